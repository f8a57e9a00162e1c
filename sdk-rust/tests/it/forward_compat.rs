//! Answers from a server newer than this SDK: an unknown field is ignored, an unknown enum
//! value is read as its enum's `Unknown` variant; neither fails the call.

use serde_json::json;
use twh::types::{MovementType, Status};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{item_json, mock_client};

#[tokio::test]
async fn an_unknown_field_and_an_unknown_enum_value_are_read_without_error() {
    let server = MockServer::start().await;
    let mut body = item_json("itm_1");
    body["status"] = json!("discontinued");
    body["color"] = json!("blue");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).insert_header("etag", "\"1\"").set_body_json(body))
        .mount(&server)
        .await;
    let item = mock_client(&server, 0).get_item("itm_1").await.expect("a newer answer still reads");
    assert_eq!(item.status, Status::Unknown("discontinued".to_owned()));
    assert_eq!(item.status.as_str(), "discontinued");
    assert!(!item.status.is_known());
    assert_eq!(serde_json::to_value(&item.status).expect("serialise"), json!("discontinued"), "sent back as read");
}

#[test]
fn known_values_read_as_their_variants_and_round_trip() {
    for (text, value) in [("receipt", MovementType::Receipt), ("transfer", MovementType::Transfer)] {
        let read: MovementType = serde_json::from_value(json!(text)).expect("known");
        assert_eq!(read, value);
        assert!(read.is_known());
        assert_eq!(read.to_string(), text);
        assert_eq!(text.parse::<MovementType>(), Ok(value));
    }
    assert_eq!("teleport".parse::<MovementType>(), Ok(MovementType::Unknown("teleport".into())));
}
