//! The OpenAPI document of the API (`GET /v1/openapi.json`), written by hand in
//! `openapi.json` beside this file. A test keeps it true: every route of [`super::routes`] is
//! in it with its method, and it names no route the service does not serve.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_document_names_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    documented.insert((method.clone(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = super::super::routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "openapi.json names routes the service does not serve: {extra:?}"
        );
        // Every operation says what it is and what it answers.
        for (m, p) in &documented {
            let op = &doc["paths"][p][m];
            assert!(op["summary"].is_string(), "{m} {p} has no summary");
            assert!(op["responses"].is_object(), "{m} {p} has no responses");
        }
    }
}
