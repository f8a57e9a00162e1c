//! The catalogue: items and locations. Both are created, read, updated (a JSON merge patch
//! under `If-Match`), archived and listed the same way; one implementation here serves both,
//! and [`Catalogued`] says what tells them apart (their key, their id prefix, their events and
//! errors, how a body builds or patches one).
//!
//! Why: they used to be two near copies of every operation, and a fix to one had to be made to
//! the other by hand. The facts that differ are listed once, side by side, in the table at the
//! end of this file.

use std::any::TypeId;
use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::events::EventData;
use super::persistence::CatalogRef;
use super::{EventType, IfMatch, Ledger, not_found_field};
use crate::clock::Timestamp;
use crate::domain::error::{DomainError, ErrorKind};
use crate::domain::index::{One, Postings, Seek, page};
use crate::domain::model::{
    CreateItem, CreateLocation, Item, Location, LocationKind, Status, UpdateItem, UpdateLocation,
};
use crate::domain::paging::{Page, Window};
use crate::domain::validate;
use crate::ids;

/// Filters of `GET /v1/items` and `GET /v1/locations`.
#[derive(Clone, Debug, Default)]
pub struct CatalogueFilter {
    /// Exact `sku` / `code`.
    pub key: Option<String>,
    /// Case-insensitive substring of sku/code or name.
    pub q: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Location kind (locations only).
    pub kind: Option<LocationKind>,
}

/// The entries of one kind in creation order (an entry's index is its id's position - 1), the
/// index of their unique keys (SKU, code), and the list indexes: by status, by kind (locations),
/// and by n-gram for `q=`. Stored as the list alone: the indexes are rebuilt on load
/// ([`Ledger::rebuild`]).
///
/// Why n-grams for `q=` (a case-insensitive substring of the key or the name): every 1-, 2- and
/// 3-gram of the lowercased key and name maps to the entries that hold it, in creation order. A
/// query of up to 3 characters is one list; a longer one intersects the lists of its trigrams
/// (every substring of a text has its trigrams among the text's), and each candidate is then
/// confirmed by the substring test itself. A suffix array would answer long queries with fewer
/// candidates but not in creation order (each page would need a sort of every match) and is
/// costly to keep current under PATCH; n-grams page in creation order like every other index
/// and an entry's change touches only its own grams. Cost: about 3 grams per character of key
/// and name, 4 bytes each (some 30 MB for 100,000 items), counted in [`Ledger::index_bytes`].
#[derive(Clone, Debug)]
pub struct Catalogue<T> {
    pub(super) entries: Vec<T>,
    keys: HashMap<String, u32>,
    by_status: [Postings; 2],
    by_facet: Vec<Postings>,
    grams: HashMap<Gram, Postings>,
}

/// Up to three lowercased characters, padded with `\0`.
type Gram = [char; 3];

impl<T> Default for Catalogue<T> {
    fn default() -> Self {
        Catalogue {
            entries: Vec::new(),
            keys: HashMap::new(),
            by_status: Default::default(),
            by_facet: Vec::new(),
            grams: HashMap::new(),
        }
    }
}

impl<T: Serialize> Serialize for Catalogue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Catalogue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Catalogue { entries: Vec::deserialize(d)?, ..Catalogue::default() })
    }
}

/// The distinct grams of the lowercased texts (1-, 2- and 3-grams).
fn grams_of(texts: [&str; 2]) -> Vec<Gram> {
    let mut out = Vec::new();
    for text in texts {
        let chars: Vec<char> = text.to_lowercase().chars().collect();
        for i in 0..chars.len() {
            out.push([chars[i], '\0', '\0']);
            if i + 1 < chars.len() {
                out.push([chars[i], chars[i + 1], '\0']);
            }
            if i + 2 < chars.len() {
                out.push([chars[i], chars[i + 1], chars[i + 2]]);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The grams a lowercased query needs: itself when up to 3 characters, else its trigrams.
fn query_grams(q: &str) -> Vec<Gram> {
    let chars: Vec<char> = q.chars().collect();
    let mut out: Vec<Gram> = match chars.len() {
        0 => Vec::new(),
        1 => vec![[chars[0], '\0', '\0']],
        2 => vec![[chars[0], chars[1], '\0']],
        _ => chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

impl<T: Catalogued> Catalogue<T> {
    /// Rebuilds the key index and the list indexes from the entries.
    pub(super) fn index_keys(&mut self) {
        self.keys = self.entries.iter().enumerate().map(|(i, e)| (e.key().to_owned(), i as u32)).collect();
        self.by_status = Default::default();
        self.by_facet = Vec::new();
        self.grams = HashMap::new();
        for i in 0..self.entries.len() {
            self.add_to_lists(i as u32);
        }
    }

    /// Adds entry `i` to the list indexes (status, kind, grams).
    fn add_to_lists(&mut self, i: u32) {
        let e = &self.entries[i as usize];
        self.by_status[e.status() as usize].push(i);
        if let Some(f) = e.facet() {
            super::indexes::slot(&mut self.by_facet, u32::from(f)).push(i);
        }
        for g in grams_of([e.key(), e.name()]) {
            self.grams.entry(g).or_default().push(i);
        }
    }

    /// Takes entry `i`, as it was (`old`), out of the list indexes.
    fn remove_from_lists(&mut self, i: u32, old: &T) {
        self.by_status[old.status() as usize].remove(i);
        if let Some(f) = old.facet() {
            super::indexes::slot(&mut self.by_facet, u32::from(f)).remove(i);
        }
        for g in grams_of([old.key(), old.name()]) {
            if let Some(p) = self.grams.get_mut(&g) {
                p.remove(i);
                if p.is_empty() {
                    self.grams.remove(&g);
                }
            }
        }
    }

    /// Heap bytes of the list indexes (the key index is counted with the entries).
    pub(super) fn index_bytes(&self) -> usize {
        self.by_status.iter().chain(&self.by_facet).map(Postings::bytes).sum::<usize>()
            + self.grams.values().map(|p| p.bytes() + std::mem::size_of::<(Gram, Postings)>() + 8).sum::<usize>()
    }
}

/// A filter only some kinds have (a location's `kind`), as a small number the catalogue indexes.
pub trait Facet {
    /// Its value, if its kind has one.
    fn facet(&self) -> Option<u8>;
    /// The value a filter asks for, if any.
    fn wanted_facet(f: &CatalogueFilter) -> Option<u8>;
}

impl Facet for Item {
    fn facet(&self) -> Option<u8> {
        None
    }
    fn wanted_facet(_: &CatalogueFilter) -> Option<u8> {
        None
    }
}

impl Facet for Location {
    fn facet(&self) -> Option<u8> {
        Some(self.kind as u8)
    }
    fn wanted_facet(f: &CatalogueFilter) -> Option<u8> {
        f.kind.map(|k| k as u8)
    }
}

/// What sets one kind of catalogue entry apart: its names, id prefix, events and errors.
#[derive(Clone, Copy, Debug)]
pub struct CatalogueKind {
    /// `item`: in "no such item".
    pub noun: &'static str,
    /// `Item`: in "Item … is archived."
    pub title: &'static str,
    /// The id prefix (`itm`), also the kind of its list cursors.
    pub prefix: &'static str,
    /// The key's field (`sku`), also its list filter.
    pub key: &'static str,
    /// The key's name in a message (`SKU`).
    pub key_title: &'static str,
    /// The error of a key already used.
    pub taken: ErrorKind,
    /// The error of a movement naming an archived entry.
    pub archived: ErrorKind,
    /// Its `created`, `updated` and `archived` events.
    pub events: [EventType; 3],
}

/// An item or a location, as the catalogue handles it. Implemented by the table at the end of
/// this file; the functions it names are the only code written per kind.
pub trait Catalogued: Clone + PartialEq + Serialize + Send + Sync + Facet + 'static {
    /// The body of its `POST`.
    type Create: DeserializeOwned + Send + 'static;
    /// The body of its `PATCH`.
    type Update: DeserializeOwned + Send + 'static;
    /// Its names, prefix, events and errors.
    const KIND: CatalogueKind;
    /// Its entries in a ledger.
    fn catalogue(ledger: &Ledger) -> &Catalogue<Self>;
    /// Its entries in a ledger, to change.
    fn catalogue_mut(ledger: &mut Ledger) -> &mut Catalogue<Self>;
    /// Entry `index` as the durable store names it.
    fn reference(index: u32) -> CatalogRef;
    /// Checks a create body's own values.
    fn check_create(req: &Self::Create) -> Result<(), DomainError>;
    /// Checks a patch's own values.
    fn check_update(patch: &Self::Update) -> Result<(), DomainError>;
    /// The key a create body asks for.
    fn create_key(req: &Self::Create) -> &str;
    /// Takes the new key, if any, out of a patch.
    fn take_key(patch: &mut Self::Update) -> Option<String>;
    /// Takes the new name, if any, out of a patch.
    fn take_name(patch: &mut Self::Update) -> Option<String>;
    /// A new entry from a checked create body.
    fn build(req: Self::Create, id: String, now: Timestamp) -> Self;
    /// Applies the rest of a patch (its key and name taken): fails if the result is invalid.
    fn apply(&mut self, patch: Self::Update) -> Result<(), DomainError>;
    /// Whether it passes the filters only some kinds have (a location's `kind`).
    fn kind_matches(&self, f: &CatalogueFilter) -> bool;
    /// Its id.
    fn id(&self) -> &str;
    /// Its key (SKU, code).
    fn key(&self) -> &str;
    /// Its name.
    fn name(&self) -> &str;
    /// Its status.
    fn status(&self) -> Status;
    /// Its version.
    fn version(&self) -> u64;
    /// The fields every operation writes.
    fn head(&mut self) -> Head<'_>;
}

/// The fields of an entry that every operation writes, whatever its kind.
pub struct Head<'a> {
    /// Key (SKU, code).
    pub key: &'a mut String,
    /// Name.
    pub name: &'a mut String,
    /// Status.
    pub status: &'a mut Status,
    /// Version.
    pub version: &'a mut u64,
    /// Last change.
    pub updated_at: &'a mut Timestamp,
}

fn taken<T: Catalogued>(key: &str) -> DomainError {
    DomainError::new(T::KIND.taken, format!("{} {key:?} is already used.", T::KIND.key_title))
}

impl Ledger {
    /// The id of entry `index` of kind `T`.
    #[inline]
    pub(super) fn entry_id<T: Catalogued>(&self, index: u32) -> String {
        ids::format(T::KIND.prefix, &self.tag, u64::from(index) + 1)
    }

    /// The index of an id of kind `T` of this tenant.
    #[inline]
    pub(super) fn entry_index<T: Catalogued>(&self, id: &str) -> Option<u32> {
        let p = ids::parse(T::KIND.prefix, &self.tag, id)?;
        (p <= T::catalogue(self).entries.len() as u64).then(|| (p - 1) as u32)
    }

    #[inline]
    pub(super) fn item_id(&self, index: u32) -> String {
        self.entry_id::<Item>(index)
    }

    #[inline]
    pub(super) fn location_id(&self, index: u32) -> String {
        self.entry_id::<Location>(index)
    }

    #[inline]
    pub(super) fn item_index(&self, id: &str) -> Option<u32> {
        self.entry_index::<Item>(id)
    }

    #[inline]
    pub(super) fn location_index(&self, id: &str) -> Option<u32> {
        self.entry_index::<Location>(id)
    }

    /// The index of an entry a movement may name (`field` is where the body named it): it
    /// exists and is not archived.
    #[inline]
    pub(super) fn active<T: Catalogued>(&self, id: &str, field: &str) -> Result<u32, DomainError> {
        let index = self.entry_index::<T>(id).ok_or_else(|| not_found_field(T::KIND.noun, field))?;
        if T::catalogue(self).entries[index as usize].status() == Status::Archived {
            return Err(DomainError::new(T::KIND.archived, format!("{} {id} is archived.", T::KIND.title)));
        }
        Ok(index)
    }

    /// `POST /v1/items`, `POST /v1/locations`.
    pub fn create<T: Catalogued>(&mut self, req: T::Create, now: Timestamp) -> Result<T, DomainError> {
        T::check_create(&req)?;
        let key = T::create_key(&req);
        if T::catalogue(self).keys.contains_key(key) {
            return Err(taken::<T>(key));
        }
        let index = T::catalogue(self).entries.len() as u32;
        let entry = T::build(req, self.entry_id::<T>(index), now);
        let catalogue = T::catalogue_mut(self);
        catalogue.keys.insert(entry.key().to_owned(), index);
        catalogue.entries.push(entry.clone());
        catalogue.add_to_lists(index);
        self.touch(T::reference(index));
        self.emit(T::KIND.events[0], snapshot(&entry), now);
        Ok(entry)
    }

    /// `GET /v1/items/{id}`, `GET /v1/locations/{id}`.
    pub fn entry<T: Catalogued>(&self, id: &str) -> Result<&T, DomainError> {
        self.entry_index::<T>(id)
            .map(|i| &T::catalogue(self).entries[i as usize])
            .ok_or_else(|| DomainError::not_found(T::KIND.noun))
    }

    /// `PATCH /v1/items/{id}`, `PATCH /v1/locations/{id}`.
    pub fn update<T: Catalogued>(
        &mut self,
        id: &str,
        mut patch: T::Update,
        if_match: &IfMatch,
        now: Timestamp,
    ) -> Result<T, DomainError> {
        let index = self.entry_index::<T>(id).ok_or_else(|| DomainError::not_found(T::KIND.noun))?;
        let catalogue = T::catalogue_mut(self);
        let current = &catalogue.entries[index as usize];
        // The body first: a request that would fail without its precondition fails the same
        // with it (RFC 9110 §13.2.1), so a malformed patch is 422 whatever its If-Match.
        T::check_update(&patch)?;
        if_match.check(current.version())?;
        let key = T::take_key(&mut patch);
        if let Some(key) = &key {
            if catalogue.keys.get(key).is_some_and(|i| *i != index) {
                return Err(taken::<T>(key));
            }
        }
        // The new entry is built and checked whole before any index is touched: a patch that
        // fails (a bad attribute after a new SKU) must leave every index as it was. Indexes
        // change only below, where nothing can fail any more.
        let mut entry = current.clone();
        if let Some(key) = key {
            *entry.head().key = key;
        }
        if let Some(name) = T::take_name(&mut patch) {
            *entry.head().name = name;
        }
        entry.apply(patch)?;
        let current = &catalogue.entries[index as usize];
        if entry == *current {
            return Ok(entry); // nothing changed: no new version, no event
        }
        if entry.key() != current.key() {
            catalogue.keys.remove(current.key());
            catalogue.keys.insert(entry.key().to_owned(), index);
        }
        let head = entry.head();
        *head.version += 1;
        *head.updated_at = now;
        let old = std::mem::replace(&mut catalogue.entries[index as usize], entry.clone());
        catalogue.remove_from_lists(index, &old);
        catalogue.add_to_lists(index);
        if TypeId::of::<T>() == TypeId::of::<Item>() {
            self.refresh_item_levels(index); // its threshold may have changed
        }
        self.touch(T::reference(index));
        self.emit(T::KIND.events[1], snapshot(&entry), now);
        Ok(entry)
    }

    /// `DELETE /v1/items/{id}`, `DELETE /v1/locations/{id}`: archives. Archiving an archived
    /// entry changes nothing.
    pub fn archive<T: Catalogued>(&mut self, id: &str, if_match: &IfMatch, now: Timestamp) -> Result<T, DomainError> {
        let index = self.entry_index::<T>(id).ok_or_else(|| DomainError::not_found(T::KIND.noun))?;
        let entry = &mut T::catalogue_mut(self).entries[index as usize];
        if_match.check(entry.version())?;
        if entry.status() == Status::Active {
            let old = entry.clone();
            let head = entry.head();
            *head.status = Status::Archived;
            *head.version += 1;
            *head.updated_at = now;
            let data = snapshot(&*entry);
            self.emit(T::KIND.events[2], data, now);
            self.touch(T::reference(index));
            let catalogue = T::catalogue_mut(self);
            catalogue.remove_from_lists(index, &old);
            catalogue.add_to_lists(index);
        }
        Ok(T::catalogue(self).entries[index as usize].clone())
    }

    /// `GET /v1/items`, `GET /v1/locations`.
    pub fn list<T: Catalogued>(&self, f: &CatalogueFilter, window: Window) -> Page<T> {
        let empty = Page { data: Vec::new(), next: None };
        let catalogue = T::catalogue(self);
        let q = f.q.as_deref().map(str::to_lowercase).filter(|q| !q.is_empty());
        let exact = match &f.key {
            Some(key) => match catalogue.keys.get(key) {
                Some(i) => Some(One(*i)),
                None => return empty,
            },
            None => None,
        };
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(one) = &exact {
            lists.push(one);
        }
        if let Some(s) = f.status {
            lists.push(&catalogue.by_status[s as usize]);
        }
        if let Some(facet) = T::wanted_facet(f) {
            match catalogue.by_facet.get(usize::from(facet)) {
                Some(p) => lists.push(p),
                None => return empty,
            }
        }
        for g in q.as_deref().map(query_grams).unwrap_or_default() {
            match catalogue.grams.get(&g) {
                Some(p) => lists.push(p),
                None => return empty,
            }
        }
        let accept = |p: usize| {
            let e = &catalogue.entries[p];
            f.key.as_ref().is_none_or(|s| *s == e.key())
                && f.status.is_none_or(|s| s == e.status())
                && e.kind_matches(f)
                && q.as_ref().is_none_or(|q| contains_ci(e.key(), q) || contains_ci(e.name(), q))
        };
        page(&mut lists, window.start, catalogue.entries.len(), window.limit, accept, |p| {
            catalogue.entries.get(p).cloned()
        })
    }
}

fn snapshot<T: Serialize>(v: &T) -> EventData {
    EventData::Snapshot(Box::new(serde_json::to_value(v).unwrap_or(Value::Null)))
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// RFC 7396 merge of `patch` into `target`.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(inner) => {
                let slot = target.entry(k).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(t) = slot {
                    merge_patch(t, inner);
                }
            }
            other => {
                target.insert(k, other);
            }
        }
    }
}

// ---- what is written per kind -----------------------------------------------------------------

fn new_item(req: CreateItem, id: String, now: Timestamp) -> Item {
    Item {
        id,
        sku: req.sku,
        name: req.name,
        unit: req.unit.unwrap_or_else(|| "each".to_owned()),
        attributes: req.attributes.unwrap_or_default(),
        low_stock_threshold: req.low_stock_threshold,
        status: Status::Active,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn patch_item(item: &mut Item, patch: UpdateItem) -> Result<(), DomainError> {
    if let Some(unit) = patch.unit {
        item.unit = unit;
    }
    if let Some(attrs) = patch.attributes {
        merge_patch(&mut item.attributes, attrs);
        validate::attributes("attributes", &item.attributes)?;
    }
    if let Some(t) = patch.low_stock_threshold {
        item.low_stock_threshold = t;
    }
    Ok(())
}

fn new_location(req: CreateLocation, id: String, now: Timestamp) -> Location {
    Location {
        id,
        code: req.code,
        name: req.name,
        kind: req.kind.unwrap_or_default(),
        status: Status::Active,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn patch_location(location: &mut Location, patch: UpdateLocation) -> Result<(), DomainError> {
    location.kind = patch.kind.unwrap_or(location.kind);
    Ok(())
}

/// Implements [`Catalogued`] from one row of the table below: the type, its bodies, its field
/// in the ledger and its key field, the functions written for it, and its [`CatalogueKind`].
macro_rules! catalogued {
    ($($t:ident($create:ident, $update:ident) in $list:ident by $key:ident:
        check $check_create:path, $check_update:path; build $build:path; apply $apply:path;
        kind_matches $kind_matches:expr; $reference:path, $kind:expr;)*) => {$(
        impl Catalogued for $t {
            type Create = $create;
            type Update = $update;
            const KIND: CatalogueKind = $kind;
            fn catalogue(ledger: &Ledger) -> &Catalogue<$t> { &ledger.$list }
            fn catalogue_mut(ledger: &mut Ledger) -> &mut Catalogue<$t> { &mut ledger.$list }
            fn reference(index: u32) -> CatalogRef { $reference(index) }
            fn check_create(req: &$create) -> Result<(), DomainError> { $check_create(req) }
            fn check_update(patch: &$update) -> Result<(), DomainError> { $check_update(patch) }
            fn create_key(req: &$create) -> &str { &req.$key }
            fn take_key(patch: &mut $update) -> Option<String> { patch.$key.take() }
            fn take_name(patch: &mut $update) -> Option<String> { patch.name.take() }
            fn build(req: $create, id: String, now: Timestamp) -> $t { $build(req, id, now) }
            fn apply(&mut self, patch: $update) -> Result<(), DomainError> { $apply(self, patch) }
            fn kind_matches(&self, f: &CatalogueFilter) -> bool { ($kind_matches)(self, f) }
            fn id(&self) -> &str { &self.id }
            fn key(&self) -> &str { &self.$key }
            fn name(&self) -> &str { &self.name }
            fn status(&self) -> Status { self.status }
            fn version(&self) -> u64 { self.version }
            fn head(&mut self) -> Head<'_> {
                Head { key: &mut self.$key, name: &mut self.name, status: &mut self.status, version: &mut self.version, updated_at: &mut self.updated_at }
            }
        }
    )*};
}

// One row a kind: what differs between items and locations, and nothing else.
catalogued! {
    Item(CreateItem, UpdateItem) in items by sku: check validate::create_item, validate::update_item; build new_item;
        apply patch_item; kind_matches |_: &Item, _: &CatalogueFilter| true; CatalogRef::Item,
        CatalogueKind { noun: "item", title: "Item", prefix: "itm", key: "sku", key_title: "SKU", taken: ErrorKind::SkuTaken,
            archived: ErrorKind::ItemArchived, events: [EventType::ItemCreated, EventType::ItemUpdated, EventType::ItemArchived] };
    Location(CreateLocation, UpdateLocation) in locations by code: check validate::create_location, validate::update_location;
        build new_location; apply patch_location; kind_matches |l: &Location, f: &CatalogueFilter| f.kind.is_none_or(|k| k == l.kind);
        CatalogRef::Location, CatalogueKind { noun: "location", title: "Location", prefix: "loc", key: "code", key_title: "Code",
            taken: ErrorKind::CodeTaken, archived: ErrorKind::LocationArchived,
            events: [EventType::LocationCreated, EventType::LocationUpdated, EventType::LocationArchived] };
}
