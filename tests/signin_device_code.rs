//! The device code flow's pacing against a scripted token endpoint: `authorization_pending`
//! keeps the interval, `slow_down` adds five seconds to it (RFC 8628 §3.5), and the
//! technician is told about both.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use hal_onboard::microsoft::signin::{
    DeviceCodePrompt, SignInObserver, SignInOptions, UserCredential,
};
use hal_onboard::secrets::MemoryStore;
use serde_json::{Value, json};
use url::Url;

#[derive(Default)]
struct Seen {
    waits: Mutex<Vec<bool>>,
}

impl SignInObserver for Seen {
    fn device_code(&self, _p: &DeviceCodePrompt) {}
    fn browser_url(&self, _u: &Url) -> bool {
        false
    }
    fn waiting(&self, _polls: u32, slowed: bool) {
        self.waits.lock().unwrap().push(slowed);
    }
}

#[tokio::test]
async fn slow_down_adds_five_seconds_and_pending_keeps_polling() {
    let polls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let p = polls.clone();
    let app = Router::new()
        .route(
            "/t/oauth2/v2.0/devicecode",
            post(|| async {
                Json(json!({"device_code": "dc", "user_code": "ABC", "verification_uri": "https://example/devicelogin", "expires_in": 60, "interval": 0}))
            }),
        )
        .route(
            "/t/oauth2/v2.0/token",
            post(move || {
                let p = p.clone();
                async move {
                    let n = {
                        let mut v = p.lock().unwrap();
                        v.push(Instant::now());
                        v.len()
                    };
                    let err = |e: &str| {
                        (
                            axum::http::StatusCode::BAD_REQUEST,
                            Json(json!({"error": e, "error_description": "AADSTS70016: pending", "error_codes": [70016]})),
                        )
                    };
                    match n {
                        1 => Err(err("authorization_pending")),
                        2 => Err(err("slow_down")),
                        _ => Ok(Json::<Value>(json!({
                            "access_token": "e30.eyJ0aWQiOiI2YjFjMWYwZS04YzFkLTRkOGUtOWEzZi0yZjJiOGUxZDBjMTEifQ.x",
                            "refresh_token": "rt",
                            "expires_in": 3600
                        }))),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let seen = Arc::new(Seen::default());
    let opts = SignInOptions::graph(
        Url::parse(&format!("http://{addr}/")).unwrap(),
        "t",
        "client",
        "https://graph.microsoft.com",
    );
    let c = UserCredential::new(
        reqwest::Client::new(),
        opts,
        Arc::new(MemoryStore::default()),
        seen.clone(),
    );
    c.token(&[]).await.unwrap();
    let polls = polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 3);
    assert!(
        polls[1] - polls[0] < Duration::from_secs(2),
        "pending keeps the interval"
    );
    assert!(
        polls[2] - polls[1] >= Duration::from_secs(5),
        "slow_down adds 5 s: {:?}",
        polls[2] - polls[1]
    );
    assert_eq!(*seen.waits.lock().unwrap(), vec![false, true]);
}
