//! Hostile input (the fault suite's hostile scenario, reduced): a thousand requests from the
//! seeded generator in `intake_testkit::hostile`, sent byte for byte: broken multipart,
//! lying files, odd Unicode, abusive headers and request lines, wrong content types, slow
//! bodies. Every one gets a 4xx problem+json answer, none a 5xx, and nothing is left in
//! staging or Redis. `scripts/chaos hostile` sends ten thousand.

mod support;

use std::time::Duration;

use intake_testkit::hostile::{self, Rng};
use support::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_requests_get_problems_and_leave_nothing() {
    let app = spawn_app_with(|s| s.api.request_timeout = std::time::Duration::from_secs(2)).await;
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    let requests: Vec<_> = (0..1000).map(|i| hostile::generate(&mut rng, i)).collect();
    let hostile::Outcome {
        answers: kinds,
        wrong,
    } = hostile::send_all(app.addr, &requests, 16, Duration::from_secs(20)).await;
    assert!(
        wrong.is_empty(),
        "{} wrong answers: {wrong:#?}",
        wrong.len()
    );
    eprintln!("{kinds:?}");
    for family in [
        "oversized-header",
        "too-many-headers",
        "control-bytes-in-header",
        "malformed-request-line",
        "oversized-uri",
        "bad-idempotency-key",
        "wrong-content-type",
        "bad-chunked-encoding",
        "slow-loris-body",
        "odd-unicode",
        "lying-files",
        "truncated-multipart",
    ] {
        assert!(
            kinds.keys().any(|(kind, _)| *kind == family),
            "{family} was sent: {kinds:?}"
        );
    }
    // Each family gets the answer its abuse calls for, whatever the bytes around it.
    for (family, status) in [
        ("oversized-header", 431),
        ("too-many-headers", 431),
        ("control-bytes-in-header", 400),
        ("malformed-request-line", 400),
        ("declared-length-over-cap", 413),
    ] {
        assert!(
            kinds
                .iter()
                .filter(|((kind, _), _)| *kind == family)
                .all(|((_, got), _)| *got == status),
            "{family} is always {status}: {kinds:?}"
        );
    }
    // A slow body is timed out (408) unless what did arrive is already wrong (400).
    for (family, allowed) in [
        ("oversized-uri", [414, 431]),
        ("slow-loris-body", [408, 400]),
    ] {
        assert!(
            kinds
                .iter()
                .filter(|((kind, _), _)| *kind == family)
                .all(|((_, got), _)| allowed.contains(got)),
            "{family}: {kinds:?}"
        );
    }
    assert!(kinds.contains_key(&("slow-loris-body", 408)), "{kinds:?}");
    assert!(app.staged_files().is_empty(), "{:?}", app.staged_files());
    assert!(app.redis_keys().is_empty(), "{:?}", app.redis_keys());
}
