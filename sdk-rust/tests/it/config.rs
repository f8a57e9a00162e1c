//! Construction: arguments, environment, defaults, and errors at construction time.
//!
//! The environment cannot be changed safely inside a multi-threaded test process, so the tests
//! that need it run this test binary again as a child with the environment they want
//! ([`in_child`]), where the probe test [`env_probe`] does the checking.

use std::process::Command;

use twh::{Client, Error};

const PROBE: &str = "TWH_SDK_TEST_ENV_PROBE";

/// Runs [`env_probe`] in a child process with `vars` set (and the SDK's own variables cleared
/// first), expecting `case` to pass there.
fn in_child(case: &str, vars: &[(&str, &str)]) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"));
    child.args(["--exact", "config::env_probe", "--nocapture", "--test-threads=1"]);
    child.env_remove(twh::API_KEY_ENV).env_remove(twh::BASE_URL_ENV).env(PROBE, case);
    for (k, v) in vars {
        child.env(k, v);
    }
    let out = child.output().expect("the child runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "case {case} failed in the child:\n{text}");
    assert!(text.contains(&format!("probe {case} ok")), "case {case} did not run in the child:\n{text}");
}

/// Does nothing unless run by [`in_child`].
#[test]
fn env_probe() {
    let Ok(case) = std::env::var(PROBE) else { return };
    match case.as_str() {
        "from_env" => {
            let client = Client::from_env().expect("configured from the environment");
            assert_eq!(client.base_url(), "http://127.0.0.1:9/twh");
            assert!(!format!("{client:?}").contains("sk_test_from_env"), "the key is redacted");
        }
        "arguments_win" => {
            let client = Client::builder().base_url("http://127.0.0.2:1").build().expect("key from the env");
            assert_eq!(client.base_url(), "http://127.0.0.2:1");
        }
        "missing_key" => {
            let e = Client::from_env().expect_err("no key anywhere");
            assert!(matches!(&e, Error::Configuration(m) if m.contains("TWH_API_KEY")), "{e}");
        }
        "empty_key" => {
            assert!(matches!(Client::from_env(), Err(Error::Configuration(_))));
        }
        "bad_url" => {
            assert!(matches!(Client::from_env(), Err(Error::Configuration(_))));
        }
        "default_url" => {
            assert_eq!(Client::from_env().expect("ok").base_url(), twh::DEFAULT_BASE_URL);
        }
        other => panic!("unknown case {other}"),
    }
    println!("probe {case} ok");
}

#[test]
fn the_environment_configures_the_client() {
    in_child("from_env", &[("TWH_API_KEY", "sk_test_from_env"), ("TWH_BASE_URL", "http://127.0.0.1:9/twh/")]);
    in_child("arguments_win", &[("TWH_API_KEY", "sk_test_from_env"), ("TWH_BASE_URL", "http://127.0.0.1:9")]);
    in_child("default_url", &[("TWH_API_KEY", "sk_test_from_env")]);
}

#[test]
fn a_missing_key_or_malformed_url_fails_at_construction() {
    in_child("missing_key", &[]);
    in_child("empty_key", &[("TWH_API_KEY", "  ")]);
    in_child("bad_url", &[("TWH_API_KEY", "sk_test_x"), ("TWH_BASE_URL", "localhost:4010")]);
    let e = Client::builder().api_key("sk_test_x").base_url("ftp://example.com").build().expect_err("bad scheme");
    assert!(matches!(&e, Error::Configuration(m) if m.contains("malformed base URL")), "{e}");
}

#[test]
fn debug_never_shows_secrets() {
    let builder = Client::builder().api_key("sk_test_supersecret").base_url("http://127.0.0.1:1");
    assert!(!format!("{builder:?}").contains("supersecret"));
    let client = builder.build().expect("client");
    let shown = format!("{client:?}");
    assert!(!shown.contains("supersecret") && shown.contains("sk_test_…redacted"), "{shown}");
    let secret = twh::webhooks::Secret::generate();
    assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
}
