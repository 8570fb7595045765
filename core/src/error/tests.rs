//! Tests of `error`.

use super::*;

#[test]
fn config_error_names_the_field() {
    let e = ConfigError::new("window", "must be at least 1, got 0");
    assert_eq!(e.field(), "window");
    assert_eq!(e.to_string(), "invalid `window`: must be at least 1, got 0");
}

#[test]
fn rejected_reports_retry_after_where_known() {
    let d = Duration::from_millis(5);
    assert_eq!(
        Rejected::CircuitOpen {
            retry_after: Some(d)
        }
        .retry_after(),
        Some(d)
    );
    assert_eq!(Rejected::BulkheadFull.retry_after(), None);
    assert_eq!(
        Rejected::RateLimited { retry_after: d }.retry_after(),
        Some(d)
    );
}

#[test]
fn error_separates_refusal_from_inner_error() {
    let e: Error<&str> = Rejected::Shed.into();
    assert_eq!(e.rejected(), Some(&Rejected::Shed));
    assert_eq!(Error::Inner("boom").into_inner(), Some("boom"));
    assert_eq!(Error::<&str>::Inner("boom").to_string(), "boom");
}
