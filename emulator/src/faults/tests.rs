//! Tests of the fault model, flags and the runtime set.

use super::set::*;
use super::*;

fn token_request() -> FaultRequest<'static> {
    FaultRequest {
        endpoint: Some(Endpoint::Token),
        tenant: Some("tenant-a"),
        client_id: Some("app-1"),
        resource: Some("https://vault.azure.net/.default"),
    }
}

#[test]
fn times_counts_down_and_retires() {
    let set = FaultSet::default();
    set.add(
        Fault::new(FaultAction::status(503))
            .on(Endpoint::Token)
            .times(2),
    )
    .unwrap();
    assert!(set.select(&token_request()).is_some());
    assert!(set.select(&token_request()).is_some());
    assert!(set.select(&token_request()).is_none());
    let status = &set.list()[0];
    assert_eq!((status.remaining, status.hits), (Some(0), 2));
}

#[test]
fn matchers_narrow_by_endpoint_tenant_client_and_resource() {
    let set = FaultSet::default();
    let req = token_request();
    for (fault, fires) in [
        (Fault::new(FaultAction::Reset).on(Endpoint::Imds), false),
        (Fault::new(FaultAction::Reset).tenant("TENANT-A"), true),
        (Fault::new(FaultAction::Reset).tenant("tenant-b"), false),
        (Fault::new(FaultAction::Reset).client_id("app-1"), true),
        (Fault::new(FaultAction::Reset).client_id("app-2"), false),
        (Fault::new(FaultAction::Reset).resource("VAULT.azure"), true),
        (Fault::new(FaultAction::Reset).resource("storage"), false),
    ] {
        set.clear();
        set.add(fault.clone()).unwrap();
        assert_eq!(set.select(&req).is_some(), fires, "{fault:?}");
    }
    // Requests the classifier does not know (the control plane) are never faulted.
    set.clear();
    set.add(Fault::new(FaultAction::Reset)).unwrap();
    assert!(set.select(&FaultRequest::default()).is_none());
}

#[test]
fn probability_is_reproducible_from_the_seed() {
    let run = |seed| {
        let set = FaultSet::default();
        set.add(Fault::new(FaultAction::Reset).probability(0.5, seed))
            .unwrap();
        (0..64)
            .map(|_| set.select(&token_request()).is_some())
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    let fired = a.iter().filter(|f| **f).count();
    assert!((16..=48).contains(&fired), "{fired} of 64 at p = 0.5");
}

#[test]
fn the_first_matching_fault_wins_and_removal_works() {
    let set = FaultSet::default();
    let a = set
        .add(Fault::new(FaultAction::status(500)).named("first"))
        .unwrap();
    set.add(Fault::new(FaultAction::status(502))).unwrap();
    assert_eq!(set.select(&token_request()).unwrap().label, "#1 first");
    assert!(set.remove(a));
    assert!(!set.remove(a));
    assert_eq!(set.select(&token_request()).unwrap().label, "#2 status 502");
    set.clear();
    assert!(set.is_empty());
}

#[test]
fn flags_parse_short_and_json_forms() {
    let f = Fault::parse_flag("status@imds,status=503,times=2,header.x-ms-test=1").unwrap();
    assert_eq!(f.matcher.endpoint, Some(Endpoint::Imds));
    assert_eq!(f.times, Some(2));
    let FaultAction::Status {
        status, headers, ..
    } = &f.action
    else {
        panic!("{f:?}")
    };
    assert_eq!(*status, 503);
    assert_eq!(headers["x-ms-test"], "1");

    let f = Fault::parse_flag("throttle@token,retry_after=5,client_id=abc").unwrap();
    assert_eq!(f.action, {
        let FaultAction::Status { headers, .. } = FaultAction::throttle(5) else {
            unreachable!()
        };
        FaultAction::Status {
            status: 429,
            body: None,
            headers,
            retry_after: Some(5),
        }
    });
    assert_eq!(f.matcher.client_id.as_deref(), Some("abc"));

    let f = Fault::parse_flag("latency@*,ms=200,probability=0.5,seed=7").unwrap();
    assert_eq!(f.action, FaultAction::Latency { ms: 200 });
    assert_eq!((f.probability, f.seed), (Some(0.5), Some(7)));
    assert_eq!(f.matcher.endpoint, None);

    let f = Fault::parse_flag("missing_fields@token,fields=access_token+expires_in").unwrap();
    assert_eq!(
        f.action,
        FaultAction::MissingFields {
            fields: vec!["access_token".into(), "expires_in".into()]
        }
    );

    let f = Fault::parse_flag(
        r#"{"match":{"endpoint":"app_service"},"action":{"kind":"hang"},"times":1}"#,
    )
    .unwrap();
    assert_eq!(f.action, FaultAction::Hang { secs: None });

    for bad in [
        "explode@token",
        "status@nowhere,status=500",
        "status@token",
        "reset@token,probability=2",
        "reset@token,times",
    ] {
        let err = Fault::parse_flag(bad).unwrap_err().to_string();
        assert!(
            err.contains("fault") || err.contains("probability"),
            "{bad}: {err}"
        );
    }
}
