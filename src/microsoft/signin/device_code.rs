//! OAuth 2.0 device authorization grant (RFC 8628) against Microsoft Entra ID.
//!
//! POST `{authority}/{tenant}/oauth2/v2.0/devicecode`, show the code, then poll `/token` every
//! `interval` seconds: `authorization_pending` keeps polling, `slow_down` adds 5 seconds to the
//! interval (RFC 8628 §3.5), `expired_token`, `authorization_declined` and
//! `bad_verification_code` end the flow with their own words.

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{
    DeviceCodePrompt, SignInError, SignInObserver, SignInOptions, TokenResponse, pause, post_form,
};

#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default = "default_expires")]
    expires_in: i64,
    #[serde(default = "default_interval")]
    interval: u64,
    #[serde(default)]
    message: Option<String>,
}

fn default_expires() -> i64 {
    900
}
fn default_interval() -> u64 {
    5
}

pub(crate) async fn sign_in(
    http: &reqwest::Client,
    opts: &SignInOptions,
    scopes: &[String],
    observer: &dyn SignInObserver,
) -> Result<TokenResponse, SignInError> {
    let scope = opts.scope_param(scopes);
    let dc: DeviceCodeResponse = post_form(
        http,
        &opts.endpoint("devicecode"),
        &[
            ("client_id", opts.client_id.as_str()),
            ("scope", scope.as_str()),
        ],
    )
    .await?
    .map_err(|e| e.into_error())?;
    let expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(dc.expires_in.max(1));
    observer.device_code(&DeviceCodePrompt {
        user_code: dc.user_code.clone(),
        verification_uri: dc.verification_uri.clone(),
        expires_at,
        message: dc.message.clone(),
    });
    let token_url = opts.endpoint("token");
    let mut interval = Duration::from_secs(dc.interval.min(60));
    let mut polls = 0u32;
    loop {
        if OffsetDateTime::now_utc() >= expires_at {
            return Err(SignInError::Expired);
        }
        pause(interval).await;
        polls += 1;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", opts.client_id.as_str()),
            ("device_code", dc.device_code.as_str()),
        ];
        match post_form::<TokenResponse>(http, &token_url, &form).await? {
            Ok(t) => return Ok(t),
            Err(e) if e.error == "authorization_pending" => observer.waiting(polls, false),
            Err(e) if e.error == "slow_down" => {
                interval += Duration::from_secs(5);
                observer.waiting(polls, true);
            }
            Err(e) => return Err(e.into_error()),
        }
    }
}
