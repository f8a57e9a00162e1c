//! The TWH quickstart: create → read → webhook, against a TWH emulator.
//!
//! With `TWH_BASE_URL` and `TWH_API_KEY` set, it talks to that server (for example a running
//! `twh-emulator serve`); otherwise it starts an emulator in this process and provisions a
//! sandbox on it. Every step prints what it did.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::mpsc;
use twh::emulator::{Config, Emulator};
use twh::types::{CreateItem, CreateLocation, CreateMovement, CreateWebhookEndpoint, Event};
use twh::webhooks::{self, Secret};

/// How long to wait for the webhook delivery before giving up.
const WEBHOOK_WAIT: Duration = Duration::from_secs(10);
/// Verified events waiting for `main` (the receiver answers 503 when this is full, and the
/// emulator retries later).
const EVENT_QUEUE_MAX: usize = 64;

/// What the webhook receiver needs: the endpoint's signing secret (known once the endpoint is
/// registered) and where to hand verified events.
struct Receiver {
    secret: OnceLock<Secret>,
    events: mpsc::Sender<Event>,
}

/// `POST /webhooks`: verify the signature on the raw body, then accept.
async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(secret) = rx.secret.get() else { return StatusCode::SERVICE_UNAVAILABLE };
    match webhooks::verify(&body, &headers, secret, webhooks::DEFAULT_TOLERANCE) {
        Ok(event) => match rx.events.try_send(event) {
            Ok(()) => StatusCode::NO_CONTENT,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        Err(e) => {
            eprintln!("   rejected a delivery: {e}");
            StatusCode::BAD_REQUEST
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. A TWH server and a sandbox's client.
    let configured = std::env::var("TWH_BASE_URL").is_ok_and(|v| !v.is_empty())
        && std::env::var("TWH_API_KEY").is_ok_and(|v| !v.is_empty());
    let (emulator, client) = if configured {
        let client = twh::Client::from_env()?;
        println!("1. Using the TWH server at {} (TWH_BASE_URL, TWH_API_KEY)", client.base_url());
        (None, client)
    } else {
        let emu = Emulator::start(Config::default()).await?;
        let client = emu.create_sandbox().await?;
        println!("1. Started an emulator in-process at {} and provisioned a sandbox", emu.base_url());
        (Some(emu), client)
    };
    let sandbox = client.get_sandbox().await?;
    println!("   sandbox {} ({} plan)", sandbox.id, sandbox.plan);
    // SKUs and codes are unique per sandbox: a suffix lets this run again on the same server.
    let run = &twh::idempotency::new_key()[..8];

    // 2. Our own webhook receiver, on a free local port.
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE_MAX);
    let receiver = Arc::new(Receiver { secret: OnceLock::new(), events: tx });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/webhooks", listener.local_addr()?);
    let app = Router::new().route("/webhooks", post(receive)).with_state(receiver.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("2. Webhook receiver listening at {hook_url}");

    // 3. An item and a location.
    let item = client
        .create_item(CreateItem::builder().sku(format!("MUG-BLU-{run}")).name("Mug, blue"))
        .await?;
    println!("3. Created item {} ({}), ETag {}", item.id, item.sku, item.etag());
    let location = client
        .create_location(CreateLocation::builder().code(format!("WH-{run}")).name("Main warehouse"))
        .await?;
    println!("   Created location {} ({})", location.id, location.code);

    // 4. A webhook endpoint for stock movements, pointing at the receiver.
    let endpoint = client
        .create_webhook_endpoint(
            CreateWebhookEndpoint::builder().url(hook_url.clone()).event_types(vec!["stock_movement.created".to_owned()]),
        )
        .await?;
    let _ = receiver.secret.set(endpoint.secret.clone());
    println!("4. Registered webhook endpoint {} for stock_movement.created", endpoint.id);

    // 5. A receipt of 10. The SDK sends an Idempotency-Key (ours here) and re-sends the same one
    //    on every retry, so this writes one ledger entry however the network behaves.
    let receipt = client
        .create_movement(CreateMovement::receipt(&item.id, &location.id, 10))
        .idempotency_key(format!("receipt-{run}"))
        .await?;
    println!("5. Receipt {}: +10, quantity after {}", receipt.id, receipt.lines[0].quantity_after);

    // 6. The level, with its ETag.
    let level = client.get_stock_level(&item.id, &location.id).await?;
    println!("6. Stock level: quantity {}, version {}, ETag {}", level.quantity, level.version, level.etag());

    // 7. Sell 3 only if the level is still the one just read (If-Match: its ETag).
    let sale = client.create_movement_if_match(CreateMovement::shipment(&item.id, &location.id, 3), level.etag()).await?;
    println!("7. Conditional shipment {}: -3, quantity after {}", sale.id, sale.lines[0].quantity_after);
    match client.create_movement_if_match(CreateMovement::shipment(&item.id, &location.id, 3), level.etag()).await {
        Err(twh::Error::PreconditionFailed(e)) => {
            println!("   The same ETag again is stale: {} {} (nothing written)", e.status, e.code)
        }
        other => bail!("expected 412 precondition_failed for a stale ETag, got {other:?}"),
    }
    let level = client.get_stock_level(&item.id, &location.id).await?;
    println!("   Stock level now: quantity {}, ETag {}", level.quantity, level.etag());

    // 8. The webhook: the receiver verified each delivery's signature before accepting it.
    let event = tokio::time::timeout(WEBHOOK_WAIT, async {
        while let Some(event) = events.recv().await {
            if event.type_ == "stock_movement.created" && event.data["id"] == receipt.id.as_str() {
                return Some(event);
            }
        }
        None
    })
    .await
    .context("no webhook delivery within 10 s")?
    .context("the webhook receiver stopped")?;
    println!("8. Received and verified webhook {} {} for movement {}", event.type_, event.id, event.data["id"]);

    server.abort();
    if let Some(emu) = emulator {
        emu.shutdown().await;
    }
    println!("Done.");
    Ok(())
}
