//! Secrets (and the personal data looked up) never reach logs or error values,
//! even on failing runs: captured tracing output is searched for them.

#[path = "services_support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{ALL_OPS, ctx, run, world};
use voxguard::secret::Secret;
use voxguard::services::{AmplitudeClient, ChiliPiperClient, HubSpotClient, SalesforceClient};
use voxguard::testbed::crm::{FaultSpec, FaultUpdate};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_failing_run_logs_no_secret_and_no_looked_up_email() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let w = world().await;
    let c = w.creds().clone();
    let wrong = Secret::new("wrong-secret-5f2e9c");
    let email = w.sim.fixtures().people[0].email.clone();
    let mut errors = Vec::new();

    // Every client under every failing fault, with the right credentials.
    let faults = [
        FaultSpec {
            error_rate: 1.0,
            error_status: 503,
            ..FaultSpec::default()
        },
        FaultSpec {
            rate_limit_rate: 1.0,
            ..FaultSpec::default()
        },
        FaultSpec {
            reset_rate: 1.0,
            ..FaultSpec::default()
        },
        FaultSpec {
            malformed_rate: 1.0,
            ..FaultSpec::default()
        },
        FaultSpec {
            hang_rate: 1.0,
            ..FaultSpec::default()
        },
    ];
    for spec in faults {
        for op in ALL_OPS {
            w.sim
                .set_faults(FaultUpdate::service(op.service(), spec.clone()))
                .unwrap();
            errors.push(
                run(&w, op, &ctx(Duration::from_millis(200)))
                    .await
                    .unwrap_err(),
            );
        }
    }
    // A Salesforce session that expires, forcing a token refresh.
    w.sim.set_faults(FaultUpdate::preset("healthy")).unwrap();
    let salesforce = w.salesforce();
    salesforce
        .find_contact(&ctx(Duration::from_secs(2)), &email)
        .await
        .unwrap();
    w.sim.expire_salesforce_sessions();
    salesforce
        .find_contact(&ctx(Duration::from_secs(2)), &email)
        .await
        .unwrap();
    // Wrong credentials everywhere.
    let t = ctx(Duration::from_secs(2));
    errors.push(
        AmplitudeClient::new(
            w.http.clone(),
            w.sim.base_url(),
            c.amplitude_api_key.clone(),
            wrong.clone(),
        )
        .user_activity(&t, &email)
        .await
        .unwrap_err(),
    );
    errors.push(
        SalesforceClient::new(
            w.http.clone(),
            w.sim.base_url(),
            c.salesforce_client_id.clone(),
            wrong.clone(),
        )
        .find_contact(&t, &email)
        .await
        .unwrap_err(),
    );
    errors.push(
        HubSpotClient::new(w.http.clone(), w.sim.base_url(), wrong.clone())
            .find_contact(&t, &email)
            .await
            .unwrap_err(),
    );
    errors.push(
        ChiliPiperClient::new(w.http.clone(), w.sim.chilipiper_base_url(), wrong.clone())
            .available_slots(&t, &w.slot_query())
            .await
            .unwrap_err(),
    );

    let text = logs.text();
    assert!(
        text.contains("crm call failed"),
        "failures were logged:\n{text}"
    );
    let secrets = [
        c.amplitude_api_key.expose(),
        c.amplitude_secret_key.expose(),
        c.salesforce_client_id.expose(),
        c.salesforce_client_secret.expose(),
        c.hubspot_token.expose(),
        c.chilipiper_api_key.expose(),
        wrong.expose(),
        // Issued Salesforce access tokens all carry this marker.
        "sim-session-",
    ];
    let errors_text: String = errors.iter().map(|e| format!("{e} {e:?}\n")).collect();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "a secret leaked into the logs: {secret}"
        );
        assert!(
            !errors_text.contains(secret),
            "a secret leaked into an error: {secret}"
        );
    }
    assert!(
        !text.contains(&email),
        "the looked-up email leaked into the logs"
    );
    assert!(
        !errors_text.contains(&email),
        "the looked-up email leaked into an error"
    );
}
