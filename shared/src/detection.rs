//! What a detector reports: a label, a score and a box in source-image pixels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A label name that did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a label is 1 to {max} characters of lowercase letters, digits, spaces, '-' or '_'", max = Label::MAX_LEN)]
pub struct LabelError;

/// An object class name such as `cup` or `dining table`.
///
/// Labels come from the model's class list, but they also arrive in query
/// strings, so the same narrow alphabet is enforced on both paths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

impl Label {
    pub const MAX_LEN: usize = 64;

    pub fn parse(input: &str) -> Result<Self, LabelError> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ' ' | '-' | '_');
        let trimmed_same = input.trim() == input;
        if input.is_empty()
            || input.len() > Self::MAX_LEN
            || !trimmed_same
            || !input.chars().all(valid_char)
        {
            return Err(LabelError);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Label {
    type Error = LabelError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Label> for String {
    fn from(label: Label) -> Self {
        label.0
    }
}

/// An axis-aligned box, `[x1, y1, x2, y2]` on the wire, in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = BBox {
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
            x2: self.x2.min(other.x2),
            y2: self.y2.min(other.y2),
        }
        .area();
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

impl From<[f32; 4]> for BBox {
    fn from([x1, y1, x2, y2]: [f32; 4]) -> Self {
        Self { x1, y1, x2, y2 }
    }
}

impl From<BBox> for [f32; 4] {
    fn from(b: BBox) -> Self {
        [b.x1, b.y1, b.x2, b.y2]
    }
}

/// One object found in a frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Detection {
    pub label: Label,
    /// Confidence from 0 to 1.
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BBox,
}

/// The wire shapes of [`Label`] and [`BBox`], whose serde forms (a checked
/// string, a 4-number array) differ from their Rust fields.
#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};

    use super::{BBox, Label};

    impl PartialSchema for Label {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "An object class name such as `cup` or `dining table`: lowercase letters, \
                     digits, spaces, `-` and `_`, with no leading or trailing space.",
                ))
                .min_length(Some(1))
                .max_length(Some(Label::MAX_LEN))
                .pattern(Some("^[a-z0-9_-]([a-z0-9 _-]*[a-z0-9_-])?$"))
                .examples(["cup"])
                .into()
        }
    }

    impl ToSchema for Label {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Label")
        }
    }

    impl PartialSchema for BBox {
        fn schema() -> RefOr<Schema> {
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::Number)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float))),
                )
                .min_items(Some(4))
                .max_items(Some(4))
                .description(Some(
                    "An axis-aligned box `[x1, y1, x2, y2]` in source-image pixels.",
                ))
                .examples([vec![12.5, 40.0, 96.0, 130.25]])
                .into()
        }
    }

    impl ToSchema for BBox {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("BBox")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_coco_names() {
        for name in crate::labels::COCO {
            assert!(Label::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_hostile_or_odd_labels() {
        for bad in [
            "",
            " cup",
            "cup ",
            "Cup",
            "cup;drop table",
            "../x",
            "cup%",
            &"a".repeat(65),
        ] {
            assert_eq!(Label::parse(bad), Err(LabelError), "{bad:?}");
        }
    }

    #[test]
    fn detection_has_the_documented_json_shape() {
        let d = Detection {
            label: Label::parse("cup").unwrap(),
            score: 0.5,
            bbox: [1.0, 2.0, 3.0, 4.0].into(),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"label": "cup", "score": 0.5, "box": [1.0, 2.0, 3.0, 4.0]})
        );
    }

    #[test]
    fn iou_of_identical_boxes_is_one_and_of_disjoint_is_zero() {
        let a = BBox::from([0.0, 0.0, 10.0, 10.0]);
        let b = BBox::from([20.0, 20.0, 30.0, 30.0]);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b), 0.0);
        assert!((a.iou(&BBox::from([5.0, 0.0, 15.0, 10.0])) - 1.0 / 3.0).abs() < 1e-6);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn label_parse_never_panics_and_accepted_labels_round_trip(text in "\\PC{0,80}") {
                if let Ok(label) = Label::parse(&text) {
                    prop_assert_eq!(label.as_str(), text.as_str());
                    let json = serde_json::to_string(&label).unwrap();
                    prop_assert_eq!(serde_json::from_str::<Label>(&json).unwrap(), label);
                }
            }
        }
    }
}
