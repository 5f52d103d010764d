//! The committed `crds-like-schemas/` must match what the Rust types generate, and every example object must round-trip.
//!
//! After changing a model type, regenerate with `EC2D_BLESS_SCHEMAS=1 cargo test --test schemas`.

use std::path::PathBuf;

use ec2d::model::{schema, Image, Instance, SecurityGroup};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds-like-schemas")
}

#[test]
fn committed_schemas_match_the_types() {
    let bless = std::env::var_os("EC2D_BLESS_SCHEMAS").is_some();
    for (file, generated) in schema::all() {
        let path = dir().join(file);
        let text = schema::render(&generated);
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with EC2D_BLESS_SCHEMAS=1", path.display()));
        assert_eq!(
            committed, text,
            "{file} drifted from the Rust types; regenerate with EC2D_BLESS_SCHEMAS=1 cargo test --test schemas"
        );
    }
}

#[test]
fn example_objects_round_trip() {
    let examples = dir().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let reparsed = match value["kind"].as_str() {
            Some("Instance") => {
                let object: Instance = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Image") => {
                let object: Image = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("SecurityGroup") => {
                let object: SecurityGroup = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("KeyPair") => {
                let object: ec2d::model::KeyPair = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("LaunchTemplate") => {
                let object: ec2d::model::LaunchTemplate = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Volume") => {
                let object: ec2d::model::Volume = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Snapshot") => {
                let object: ec2d::model::Snapshot = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Address") => {
                let object: ec2d::model::Address = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Vpc") => {
                let object: ec2d::model::VpcRecord = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("Subnet") => {
                let object: ec2d::model::SubnetRecord = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("InternetGateway") => {
                let object: ec2d::model::InternetGateway = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            Some("RouteTable") => {
                let object: ec2d::model::RouteTable = serde_json::from_value(value.clone())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                serde_json::to_value(&object).unwrap()
            }
            other => panic!("{}: unknown kind {other:?}", path.display()),
        };
        assert_eq!(reparsed, value, "{} does not round-trip", path.display());
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected at least four example objects, found {checked}"
    );
}
