//! `DatumValidator` on arbitrary bytes, against three schemas (chosen by the
//! first input byte): never panics, errors point inside the datum, and what
//! it accepts apache-avro decodes completely (no trailing bytes).

#![no_main]

use std::sync::LazyLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use relay::avro::DatumValidator;
use speeddata_xdp_fuzz::schemas;

struct Case {
    /// Leaked, so the reader can borrow it for the process's lifetime.
    #[allow(
        dead_code,
        reason = "keeps the leaked schema reachable (LeakSanitizer)"
    )]
    schema: &'static Schema,
    validator: DatumValidator,
    /// The reference decoder, when it can be trusted to terminate on
    /// anything the validator accepts (not for zero-size items).
    reference: Option<GenericDatumReader<'static>>,
}

impl Case {
    fn new(text: &str, differential: bool) -> Case {
        let schema: &'static Schema = Box::leak(Box::new(schemas::parse(text)));
        Case {
            schema,
            validator: DatumValidator::new(schema).expect("the fuzz schemas compile"),
            reference: differential.then(|| {
                GenericDatumReader::builder(schema)
                    .build()
                    .expect("a reader")
            }),
        }
    }
}

static CASES: LazyLock<[Case; 3]> = LazyLock::new(|| {
    [
        Case::new(schemas::EXAMPLE, true),
        Case::new(schemas::RICH, true),
        Case::new(schemas::ZERO_SIZE, false),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&selector, datum)) = data.split_first() else {
        return;
    };
    let case = &CASES[usize::from(selector) % CASES.len()];
    match case.validator.validate(datum) {
        Ok(()) => {
            if let Some(reader) = &case.reference {
                let mut rest = datum;
                if let Err(e) = reader.read_value(&mut rest) {
                    panic!("the validator accepted a datum apache-avro cannot decode: {e}");
                }
                assert!(
                    rest.is_empty(),
                    "the validator accepted {} trailing bytes",
                    rest.len()
                );
            }
        }
        Err(e) => {
            assert!(
                e.offset <= datum.len(),
                "error offset {} past the datum ({} bytes): {e}",
                e.offset,
                datum.len()
            );
            assert!(!e.to_string().is_empty());
        }
    }
});
