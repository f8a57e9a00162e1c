//! The movement JSON writer: a stored movement written as serialising [`Movement`] would,
//! byte for byte, straight from the record.
//!
//! Why a file of its own: the write path renders one movement per write, and building the
//! `Movement` (eight `String`s) to serialise it was a measurable share of a write's cost; this
//! writer is that optimisation, kept apart with the test that holds it equal to serde's output.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::movements::{LineRecord, MovementRecord};
use super::{Ledger, position};
#[cfg(doc)]
use crate::domain::model::Movement;
use crate::ids;

/// Writes a stored movement as serialising [`Movement`] does, byte for byte, straight from the
/// record: the keys and most values need no escaping, so only free text goes through serde_json.
fn write_movement(out: &mut Vec<u8>, ledger: &Ledger, sequence: u64, r: &MovementRecord) -> serde_json::Result<()> {
    let id = |out: &mut Vec<u8>, prefix: &str, position: u64| {
        out.push(b'"');
        out.extend_from_slice(ids::IdText::new(prefix, &ledger.tag, position).as_str().as_bytes());
        out.push(b'"');
    };
    let extra = r.extra.as_deref();
    out.extend_from_slice(b"{\"id\":");
    id(out, "mov", sequence);
    out.extend_from_slice(b",\"sequence\":");
    serde_json::to_writer(&mut *out, &sequence)?;
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(r.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"item_id\":");
    id(out, "itm", u64::from(r.item) + 1);
    out.extend_from_slice(b",\"lines\":[");
    for (i, line) in r.lines().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"location_id\":");
        id(out, "loc", u64::from(line.location) + 1);
        out.extend_from_slice(b",\"delta\":");
        serde_json::to_writer(&mut *out, &line.delta)?;
        out.extend_from_slice(b",\"quantity_after\":");
        serde_json::to_writer(&mut *out, &line.quantity_after)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"reference\":");
    serde_json::to_writer(&mut *out, &r.reference())?;
    out.extend_from_slice(b",\"reason\":");
    serde_json::to_writer(&mut *out, &extra.and_then(|e| e.reason.as_deref()))?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut *out, &extra.and_then(|e| e.metadata.as_ref()))?;
    out.extend_from_slice(b",\"reverses\":");
    match r.reverses() {
        Some(s) => id(out, "mov", s.get()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"created_at\":");
    serde_json::to_writer(&mut *out, &r.created_at)?;
    out.push(b'}');
    Ok(())
}

/// A stored movement that serializes (through any serde serializer) exactly as its
/// [`Movement`] does, field for field, without building it: ids are written from the stack
/// ([`ids::IdText`]), text and metadata are borrowed from the record. What an event page
/// renders for each `stock_movement.*` event.
#[derive(Clone, Copy, Debug)]
pub struct MovementRef<'a> {
    ledger: &'a Ledger,
    sequence: u64,
    record: &'a MovementRecord,
}

/// One line of a [`MovementRef`], serialized as a `MovementLine`.
struct LineRef<'a>(&'a Ledger, &'a LineRecord);

/// The lines of a [`MovementRef`].
struct LinesRef<'a>(MovementRef<'a>);

impl Serialize for LineRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MovementLine", 3)?;
        st.serialize_field(
            "location_id",
            ids::IdText::new("loc", &self.0.tag, u64::from(self.1.location) + 1).as_str(),
        )?;
        st.serialize_field("delta", &self.1.delta)?;
        st.serialize_field("quantity_after", &self.1.quantity_after)?;
        st.end()
    }
}

impl Serialize for LinesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.record.lines().map(|l| LineRef(self.0.ledger, l)))
    }
}

impl Serialize for MovementRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (ledger, r) = (self.ledger, self.record);
        let extra = r.extra.as_deref();
        let id = |prefix: &str, position: u64| ids::IdText::new(prefix, &ledger.tag, position);
        let mut st = s.serialize_struct("Movement", 10)?;
        st.serialize_field("id", id("mov", self.sequence).as_str())?;
        st.serialize_field("sequence", &self.sequence)?;
        st.serialize_field("type", &r.kind)?;
        st.serialize_field("item_id", id("itm", u64::from(r.item) + 1).as_str())?;
        st.serialize_field("lines", &LinesRef(*self))?;
        st.serialize_field("reference", &r.reference())?;
        st.serialize_field("reason", &extra.and_then(|e| e.reason.as_deref()))?;
        st.serialize_field("metadata", &extra.and_then(|e| e.metadata.as_ref()))?;
        st.serialize_field("reverses", &r.reverses().map(|s| id("mov", s.get())).as_ref().map(ids::IdText::as_str))?;
        st.serialize_field("created_at", &r.created_at)?;
        st.end()
    }
}

impl Ledger {
    /// The movement with this sequence as a [`MovementRef`], if it exists.
    pub fn movement_ref(&self, sequence: u64) -> Option<MovementRef<'_>> {
        let record = self.movements.get(position(sequence))?;
        Some(MovementRef { ledger: self, sequence, record })
    }

    /// The movement with this sequence as JSON, byte for byte what serialising
    /// [`Ledger::movement`] writes, without building it (the write path renders one per write).
    pub fn movement_json(&self, sequence: u64) -> String {
        let mut out = Vec::with_capacity(384);
        let written = match self.movements.get(position(sequence)) {
            Some(record) => write_movement(&mut out, self, sequence, record),
            None => serde_json::to_writer(&mut out, &self.movement(sequence)),
        };
        // serde_json writes UTF-8 only.
        written.ok().and_then(|()| String::from_utf8(out).ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::model::{Item, Location};

    fn req<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("a valid request")
    }

    /// The write path's rendering equals serialising the `Movement`, for every shape.
    #[test]
    fn movement_json_is_the_movement_serialised() {
        let now = Timestamp(1_700_000_000_123_456);
        let mut ledger = Ledger::with_tag("0a1b2c3d".to_owned());
        let item = ledger.create::<Item>(req(json!({"sku": "s", "name": "n"})), now).unwrap().id;
        let a = ledger.create::<Location>(req(json!({"code": "a", "name": "A"})), now).unwrap().id;
        let b = ledger.create::<Location>(req(json!({"code": "b", "name": "B"})), now).unwrap().id;
        let bodies = [
            json!({"type": "receipt", "item_id": item, "location_id": a, "quantity": 5}),
            json!({"type": "transfer", "item_id": item, "from_location_id": a, "to_location_id": b, "quantity": 2,
                   "reference": "PO \"7\"\n", "metadata": {"z": 1, "a": [true, null, "é"]}}),
            json!({"type": "adjustment", "item_id": item, "location_id": b, "quantity": -1, "reason": "count"}),
        ];
        let mut sequences = Vec::new();
        for body in bodies {
            sequences.push(ledger.create_movement(req(body), None, now).unwrap());
        }
        let first_id = ledger.movement_id(sequences[0]);
        sequences.push(ledger.reverse(&first_id, req(json!({"reason": "oops", "allow_negative": true})), now).unwrap());
        for s in sequences.into_iter().chain([999]) {
            assert_eq!(ledger.movement_json(s), serde_json::to_string(&ledger.movement(s)).unwrap(), "sequence {s}");
            if let Some(r) = ledger.movement_ref(s) {
                assert_eq!(serde_json::to_string(&r).unwrap(), ledger.movement_json(s), "MovementRef, sequence {s}");
                let value = serde_json::to_value(r).unwrap();
                assert_eq!(value, serde_json::to_value(ledger.movement(s)).unwrap(), "MovementRef as a Value");
            }
        }
    }
}
