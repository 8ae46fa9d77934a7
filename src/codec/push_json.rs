//! The proto3 JSON mapping of the push messages, as Go's `protojson` reads
//! and writes them inside connect-go.
//!
//! Reading follows connect-go's JSON codec, which is what Pyroscope and
//! Alloy run:
//! - **Unknown fields are ignored.** connect-go unmarshals with
//!   `protojson.UnmarshalOptions{DiscardUnknown: true}` so that clients and
//!   servers on different schema versions interoperate; refusing them
//!   would reject requests Pyroscope accepts.
//! - Field names are case-sensitive. Each field is accepted under its JSON
//!   name and its proto name (`rawProfile` / `raw_profile`; `ID` is both).
//!   Lowercase `id` is therefore an unknown field and ignored, exactly as
//!   protojson does; giving the same field twice is an error.
//! - `null` stands for the default value (empty list, string or bytes).
//! - `bytes` are base64, standard or URL-safe, padded or not, with line
//!   breaks ignored, as Go's protojson accepts.
//!
//! Writing emits JSON names, omits default values and uses padded standard
//! base64, as `protojson.Marshal` does.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::Bytes;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::proto::{LabelPair, ProfileAnnotation, PushRequest, RawProfileSeries, RawSample};

/// Go's base64 decoders do not insist on zero trailing bits or on padding
/// (protojson picks the padded or unpadded form by length).
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

pub(super) fn decode_request(json: &[u8]) -> Result<PushRequest, serde_json::Error> {
    serde_json::from_slice::<Object<RequestIn>>(json).map(|request| PushRequest::from(request.0))
}

pub(super) fn encode_request(request: &PushRequest) -> Vec<u8> {
    // Plain structs of strings, lists and byte strings always serialize.
    serde_json::to_vec(&RequestOut(request)).expect("a PushRequest always serializes to JSON")
}

// === Reading ===

#[derive(Deserialize)]
struct RequestIn {
    #[serde(default, deserialize_with = "null_as_default")]
    series: Vec<Object<SeriesIn>>,
}

#[derive(Deserialize)]
struct SeriesIn {
    #[serde(default, deserialize_with = "null_as_default")]
    labels: Vec<Object<PairIn>>,
    #[serde(default, deserialize_with = "null_as_default")]
    samples: Vec<Object<SampleIn>>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: Vec<Object<AnnotationIn>>,
}

#[derive(Deserialize)]
struct PairIn {
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    value: String,
}

#[derive(Deserialize)]
struct AnnotationIn {
    #[serde(default, deserialize_with = "null_as_default")]
    key: String,
    #[serde(default, deserialize_with = "null_as_default")]
    value: String,
}

#[derive(Deserialize)]
struct SampleIn {
    #[serde(
        default,
        rename = "rawProfile",
        alias = "raw_profile",
        deserialize_with = "base64_bytes"
    )]
    raw_profile: Bytes,
    #[serde(default, rename = "ID", deserialize_with = "null_as_default")]
    id: String,
}

/// A message that must be a JSON object. Derived structs also accept an
/// array of field values, which protojson refuses.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
    deserializer.deserialize_any(Base64Visitor)
}

struct Base64Visitor;

impl Visitor<'_> for Base64Visitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Bytes, E> {
        Ok(Bytes::new())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Bytes, E> {
        decode_base64(text).map(Bytes::from).map_err(E::custom)
    }
}

/// Decodes base64 the way protojson does: the URL-safe alphabet when the
/// text holds `-` or `_`, the standard one otherwise; `\r` and `\n` are
/// skipped, as Go's decoder skips them.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let text: Cow<'_, str> = if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(text)
    };
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    engine
        .decode(text.as_bytes())
        .map_err(|err| format!("invalid base64 in rawProfile: {err}"))
}

impl From<RequestIn> for PushRequest {
    fn from(request: RequestIn) -> Self {
        PushRequest {
            series: request
                .series
                .into_iter()
                .map(|Object(series)| RawProfileSeries::from(series))
                .collect(),
        }
    }
}

impl From<SeriesIn> for RawProfileSeries {
    fn from(series: SeriesIn) -> Self {
        RawProfileSeries {
            labels: series
                .labels
                .into_iter()
                .map(|Object(l)| LabelPair {
                    name: l.name,
                    value: l.value,
                })
                .collect(),
            samples: series
                .samples
                .into_iter()
                .map(|Object(s)| RawSample {
                    raw_profile: s.raw_profile,
                    id: s.id,
                })
                .collect(),
            annotations: series
                .annotations
                .into_iter()
                .map(|Object(a)| ProfileAnnotation {
                    key: a.key,
                    value: a.value,
                })
                .collect(),
        }
    }
}

// === Writing ===
//
// Wrappers borrow the generated messages, so encoding copies nothing but
// the output text.

struct RequestOut<'a>(&'a PushRequest);
struct SeriesOut<'a>(&'a RawProfileSeries);
/// A two-string message (`LabelPair`, `ProfileAnnotation`) with its field
/// names.
struct PairOut<'a> {
    names: [&'static str; 2],
    values: [&'a str; 2],
}
struct SampleOut<'a>(&'a RawSample);

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if !self.0.series.is_empty() {
            map.serialize_entry("series", &List(self.0.series.iter().map(SeriesOut)))?;
        }
        map.end()
    }
}

impl Serialize for SeriesOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let series = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !series.labels.is_empty() {
            let labels = series.labels.iter().map(|l| PairOut {
                names: ["name", "value"],
                values: [&l.name, &l.value],
            });
            map.serialize_entry("labels", &List(labels))?;
        }
        if !series.samples.is_empty() {
            map.serialize_entry("samples", &List(series.samples.iter().map(SampleOut)))?;
        }
        if !series.annotations.is_empty() {
            let annotations = series.annotations.iter().map(|a| PairOut {
                names: ["key", "value"],
                values: [&a.key, &a.value],
            });
            map.serialize_entry("annotations", &List(annotations))?;
        }
        map.end()
    }
}

impl Serialize for PairOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.names.into_iter().zip(self.values) {
            if !value.is_empty() {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

impl Serialize for SampleOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let sample = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !sample.raw_profile.is_empty() {
            map.serialize_entry("rawProfile", &STANDARD.encode(&sample.raw_profile))?;
        }
        if !sample.id.is_empty() {
            map.serialize_entry("ID", &sample.id)?;
        }
        map.end()
    }
}

/// Serializes an iterator as a JSON array. The iterator is cloned because
/// `Serialize` only gets `&self`; the iterators used here are cheap views.
struct List<I>(I);

impl<I> Serialize for List<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}
