//! Avro: datum validation against a channel schema and Object Container File
//! archives. Pure framing/validation is separate from the file I/O.
