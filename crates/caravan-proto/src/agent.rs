//! The Agent service's log level: [`LogLevel`] <-> its proto enum.

use caravan_structs::LogLevel;

use crate::v1;

/// The proto value of `level`.
pub fn log_level_to_proto(level: LogLevel) -> i32 {
    let l = match level {
        LogLevel::Trace => v1::LogLevel::Trace,
        LogLevel::Debug => v1::LogLevel::Debug,
        LogLevel::Info => v1::LogLevel::Info,
        LogLevel::Warn => v1::LogLevel::Warn,
        LogLevel::Error => v1::LogLevel::Error,
        LogLevel::Off => v1::LogLevel::Off,
    };
    l as i32
}

/// The level a request asks for: unspecified is info; `None` for a value this build does not
/// know.
pub fn log_level_from_proto(value: i32) -> Option<LogLevel> {
    match v1::LogLevel::try_from(value).ok()? {
        v1::LogLevel::Unspecified | v1::LogLevel::Info => Some(LogLevel::Info),
        v1::LogLevel::Trace => Some(LogLevel::Trace),
        v1::LogLevel::Debug => Some(LogLevel::Debug),
        v1::LogLevel::Warn => Some(LogLevel::Warn),
        v1::LogLevel::Error => Some(LogLevel::Error),
        v1::LogLevel::Off => Some(LogLevel::Off),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for l in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Off,
        ] {
            assert_eq!(log_level_from_proto(log_level_to_proto(l)), Some(l));
        }
        assert_eq!(log_level_from_proto(0), Some(LogLevel::Info));
        assert_eq!(log_level_from_proto(99), None);
    }
}
