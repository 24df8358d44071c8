//! Values used when a section or field is absent. The multicast groups and
//! storage path are SpeedData's own defaults.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::model::{Algorithm, Codec, Decimation, Retention, Rotation, Window};

/// Enabled, factor 1 (every datum), downsample, time field `time`.
pub fn decimation() -> Decimation {
    Decimation {
        enabled: true,
        window: Window::Count(1),
        algorithm: Algorithm::Downsample,
        time_field: TIME_FIELD.to_owned(),
    }
}
/// The field decimation copies from a window's last datum instead of
/// aggregating it (SpeedData's schemas call their timestamp `time`).
pub const TIME_FIELD: &str = "time";
/// A new file every hour.
pub const ROTATION: Rotation = Rotation::Time(Duration::from_secs(3600));
/// Files are kept for a day.
pub const RETENTION: Retention = Retention::Ttl(Duration::from_secs(86_400));
pub const FULL_RATE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 6000);
pub const DECIMATED: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 2), 6001);
/// Relative to the project root, like SpeedData's.
pub const AVRO_PATH: &str = "./data";
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
pub const FLUSH_BYTES: usize = 64 * 1024;
pub const CODEC: Codec = Codec::Null;
/// Sources are remote: listen on every address.
pub const BIND: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
/// Multicast stays on the local network unless asked otherwise.
pub const TTL: u32 = 1;
pub const MULTICAST_LOOP: bool = true;
