//! `twh::testing`: one emulator per test binary, a fresh sandbox per test, each with its own
//! clock. The first two tests are the acceptance pair (one advances its sandbox's clock, the
//! other's is untouched, whichever runs first, in one process under `cargo test` or in two under
//! nextest); the third shows both sandboxes in one process, on one emulator.

use std::time::Duration;

use twh::testing;

/// Two days, far more than any test takes.
const AHEAD: Duration = Duration::from_secs(2 * 24 * 3600);

/// A sandbox whose clock was never advanced runs with the emulator clock.
async fn assert_untouched(sandbox: &testing::Sandbox) {
    let emulator_now = sandbox.emulator.clock().await.expect("clock").now;
    let mine = sandbox.clock().await.expect("sandbox clock");
    assert!(
        (mine - emulator_now).num_seconds().abs() < 60,
        "this sandbox's clock ({mine}) is the emulator's ({emulator_now})"
    );
    // What it creates is stamped with its own time.
    let item = sandbox.client.create_item(crate::common::new_item("UNTOUCHED")).await.expect("item");
    assert!((item.created_at - emulator_now).num_seconds().abs() < 60, "{}", item.created_at);
}

#[tokio::test]
async fn hermetic_a_advances_its_own_clock() {
    let sandbox = testing::sandbox().await.expect("sandbox");
    let before = sandbox.clock().await.expect("clock");
    let after = sandbox.advance_clock(AHEAD).await.expect("advance");
    assert!(after >= before + chrono::Duration::from_std(AHEAD).expect("duration"));
    let item = sandbox.client.create_item(crate::common::new_item("AHEAD")).await.expect("item");
    assert!(item.created_at >= after, "stamped with the sandbox's time: {} < {after}", item.created_at);
}

#[tokio::test]
async fn hermetic_b_sees_its_own_time_only() {
    let sandbox = testing::sandbox().await.expect("sandbox");
    assert_untouched(&sandbox).await;
}

#[tokio::test]
async fn two_sandboxes_of_one_emulator_keep_their_own_time() {
    let (one, two) = (testing::sandbox().await.expect("one"), testing::sandbox().await.expect("two"));
    assert_eq!(one.emulator.base_url(), two.emulator.base_url(), "one emulator per test binary");
    assert_ne!(one.id(), two.id());
    one.advance_clock(AHEAD).await.expect("advance one");
    assert_untouched(&two).await;
    assert!(one.clock().await.expect("clock") > two.clock().await.expect("clock") + chrono::Duration::days(1));
}
