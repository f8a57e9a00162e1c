//! The API's operations as rows of (method, path, operation id), in the order of the document.
//!
//! This is the one list of what the emulator serves: the router binds a handler to each id
//! ([`crate::http`]) and the OpenAPI document describes each id ([`crate::openapi`]); neither
//! repeats a method or a path. Building either with an id that is not here, or leaving a row
//! without a handler or a description, panics at start (tests build both).

/// One operation: how it is called, and its `operationId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Lower case, as OpenAPI writes it: `get`, `post`, `put`, `patch`, `delete`.
    pub method: &'static str,
    /// The path template, parameters in braces.
    pub path: &'static str,
    /// The `operationId`.
    pub id: &'static str,
}

const fn op(method: &'static str, path: &'static str, id: &'static str) -> Operation {
    Operation { method, path, id }
}

/// Every operation, in the document's order.
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("post", "/v1/sandboxes", "create_sandbox"),
    op("get", "/v1/sandbox", "get_sandbox"),
    op("delete", "/v1/sandbox", "delete_sandbox"),
    op("post", "/v1/sandbox/reset", "reset_sandbox"),
    op("post", "/v1/api-keys/roll", "roll_api_key"),
    op("get", "/v1/items", "list_items"),
    op("post", "/v1/items", "create_item"),
    op("get", "/v1/items/{id}", "get_item"),
    op("patch", "/v1/items/{id}", "update_item"),
    op("delete", "/v1/items/{id}", "archive_item"),
    op("get", "/v1/locations", "list_locations"),
    op("post", "/v1/locations", "create_location"),
    op("get", "/v1/locations/{id}", "get_location"),
    op("patch", "/v1/locations/{id}", "update_location"),
    op("delete", "/v1/locations/{id}", "archive_location"),
    op("get", "/v1/stock-movements", "list_stock_movements"),
    op("post", "/v1/stock-movements", "create_stock_movement"),
    op("post", "/v1/stock-movements/batch", "create_stock_movement_batch"),
    op("get", "/v1/stock-movements/{id}", "get_stock_movement"),
    op("post", "/v1/stock-movements/{id}/reverse", "reverse_stock_movement"),
    op("get", "/v1/stock-levels", "list_stock_levels"),
    op("get", "/v1/items/{item_id}/stock-levels/{location_id}", "get_stock_level"),
    op("get", "/v1/events", "list_events"),
    op("get", "/v1/events/{id}", "get_event"),
    op("get", "/v1/webhook-endpoints", "list_webhook_endpoints"),
    op("post", "/v1/webhook-endpoints", "create_webhook_endpoint"),
    op("get", "/v1/webhook-endpoints/{id}", "get_webhook_endpoint"),
    op("patch", "/v1/webhook-endpoints/{id}", "update_webhook_endpoint"),
    op("delete", "/v1/webhook-endpoints/{id}", "delete_webhook_endpoint"),
    op("post", "/v1/webhook-endpoints/{id}/rotate-secret", "rotate_webhook_secret"),
    op("get", "/v1/webhook-endpoints/{id}/secret", "get_webhook_endpoint_secret"),
    op("post", "/v1/webhook-endpoints/{id}/test", "test_webhook_endpoint"),
    op("post", "/v1/webhook-endpoints/{id}/replay", "replay_webhook_endpoint"),
    op("get", "/v1/webhook-deliveries", "list_webhook_deliveries"),
    op("get", "/v1/webhook-deliveries/{id}", "get_webhook_delivery"),
    op("post", "/v1/webhook-deliveries/{id}/replay", "replay_webhook_delivery"),
    op("get", "/v1/plans", "list_plans"),
    op("get", "/v1/subscription", "get_subscription"),
    op("post", "/v1/subscription", "update_subscription"),
    op("get", "/v1/usage", "get_usage"),
    op("get", "/v1/usage/export", "export_usage"),
    op("get", "/v1/invoices", "list_invoices"),
    op("get", "/v1/invoices/{id}", "get_invoice"),
    op("get", "/v1/reconciliations", "list_reconciliations"),
    op("post", "/v1/reconciliations", "create_reconciliation"),
    op("get", "/v1/reconciliations/{id}", "get_reconciliation"),
    op("post", "/v1/jobs", "create_job"),
    op("get", "/v1/jobs/{id}", "get_job"),
    op("get", "/_emulator/health", "emulator_health"),
    op("get", "/_emulator/clock", "emulator_get_clock"),
    op("post", "/_emulator/clock/advance", "emulator_advance_clock"),
    op("get", "/_emulator/sandboxes/{id}/clock", "emulator_get_sandbox_clock"),
    op("post", "/_emulator/sandboxes/{id}/clock/advance", "emulator_advance_sandbox_clock"),
    op("get", "/_emulator/faults", "emulator_list_faults"),
    op("post", "/_emulator/faults", "emulator_add_fault"),
    op("delete", "/_emulator/faults", "emulator_clear_faults"),
    op("post", "/_emulator/faults/corrupt-stock-level", "emulator_corrupt_stock_level"),
    op("get", "/_emulator/state", "emulator_export_state"),
    op("put", "/_emulator/state", "emulator_import_state"),
    op("post", "/_emulator/reset", "emulator_reset"),
    op("post", "/_emulator/fixtures", "emulator_load_fixtures"),
    op("get", "/_emulator/sink/{name}", "emulator_list_sink"),
    op("post", "/_emulator/sink/{name}", "emulator_sink_receive"),
    op("delete", "/_emulator/sink/{name}", "emulator_clear_sink"),
    op("get", "/_emulator/requests", "emulator_list_requests"),
    op("delete", "/_emulator/requests", "emulator_clear_requests"),
    op("get", "/_emulator/requests/{id}", "emulator_get_request"),
    op("get", "/metrics", "get_metrics"),
    op("get", "/openapi.json", "get_openapi_document"),
    op("get", "/openapi/postman.json", "get_postman_collection"),
];

/// The operation `id`. Panics on an id that is not in [`OPERATIONS`]: a typo in the route table
/// or the document's table, found when either is built.
pub fn find(id: &str) -> &'static Operation {
    OPERATIONS.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("no operation {id:?} in api::OPERATIONS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_method_paths_are_unique() {
        for (i, a) in OPERATIONS.iter().enumerate() {
            for b in &OPERATIONS[i + 1..] {
                assert_ne!(a.id, b.id);
                assert!((a.method, a.path) != (b.method, b.path), "{a:?} {b:?}");
            }
        }
    }
}
