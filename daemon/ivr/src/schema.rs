//! The JSON Schema of a flow file, for editors (Even Better TOML / taplo).
//! Kept by hand in `flow.schema.json`; the test below fails when the parser
//! accepts a key the schema lacks, or the other way round.

/// JSON Schema (draft-07) of one flow file; `hotline flow schema` prints it.
pub const FLOW_SCHEMA_JSON: &str = include_str!("flow.schema.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::FLOW_SCHEMA_JSON;
    use crate::model::STEP_TYPES;

    /// Just enough JSON for the test (no serde_json in this crate).
    #[derive(Debug, Clone, PartialEq)]
    enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(BTreeMap<String, Json>),
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) {
            self.ws();
            assert_eq!(self.s[self.i] as char, c as char, "at byte {}", self.i);
            self.i += 1;
        }

        fn value(&mut self) -> Json {
            self.ws();
            match self.s[self.i] {
                b'{' => {
                    self.i += 1;
                    let mut m = BTreeMap::new();
                    self.ws();
                    if self.s[self.i] == b'}' {
                        self.i += 1;
                        return Json::Obj(m);
                    }
                    loop {
                        self.ws();
                        let Json::Str(k) = self.value() else {
                            panic!("key at {}", self.i)
                        };
                        self.eat(b':');
                        let v = self.value();
                        assert!(m.insert(k.clone(), v).is_none(), "duplicate key {k}");
                        self.ws();
                        match self.s[self.i] {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                return Json::Obj(m);
                            }
                            c => panic!("unexpected {} at {}", c as char, self.i),
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.s[self.i] == b']' {
                        self.i += 1;
                        return Json::Arr(v);
                    }
                    loop {
                        v.push(self.value());
                        self.ws();
                        match self.s[self.i] {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                return Json::Arr(v);
                            }
                            c => panic!("unexpected {} at {}", c as char, self.i),
                        }
                    }
                }
                b'"' => {
                    self.i += 1;
                    let mut out = Vec::new();
                    while self.s[self.i] != b'"' {
                        if self.s[self.i] == b'\\' {
                            self.i += 1;
                            match self.s[self.i] {
                                b'n' => out.push(b'\n'),
                                b't' => out.push(b'\t'),
                                other => out.push(other),
                            }
                        } else {
                            out.push(self.s[self.i]);
                        }
                        self.i += 1;
                    }
                    self.i += 1;
                    Json::Str(String::from_utf8(out).unwrap())
                }
                b't' => {
                    self.i += 4;
                    Json::Bool(true)
                }
                b'f' => {
                    self.i += 5;
                    Json::Bool(false)
                }
                b'n' => {
                    self.i += 4;
                    Json::Null
                }
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_digit() || b"-+.eE".contains(&self.s[self.i]))
                    {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                    Json::Num(text.parse().unwrap())
                }
            }
        }
    }

    fn schema() -> Json {
        let mut p = P {
            s: FLOW_SCHEMA_JSON.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing text after the schema");
        v
    }

    fn get<'a>(v: &'a Json, key: &str) -> &'a Json {
        match v {
            Json::Obj(m) => m.get(key).unwrap_or_else(|| panic!("no `{key}`")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn keys(v: &Json) -> Vec<String> {
        match get(v, "properties") {
            Json::Obj(m) => m.keys().cloned().collect(),
            other => panic!("properties: {other:?}"),
        }
    }

    #[test]
    fn schema_lists_exactly_the_keys_the_parser_accepts() {
        let schema = schema();
        assert_eq!(
            get(&schema, "$schema"),
            &Json::Str("http://json-schema.org/draft-07/schema#".into())
        );
        let defs = get(&schema, "definitions");
        let census = crate::parse::known_keys();
        let table = |label: &str| -> &Json {
            match label {
                "flow" => &schema,
                "offers" => get(defs, "offer_set"),
                "offer_rule" => get(defs, "offer_rule"),
                "caller_rule" => get(defs, "caller_rule"),
                "promise_computed" => get(defs, "promise_computed"),
                step => get(defs, &step.replace('.', "_")),
            }
        };
        let mut labels: Vec<&str> = census.keys().copied().collect();
        labels.sort();
        let mut expected: Vec<String> = [
            "flow",
            "offers",
            "offer_rule",
            "caller_rule",
            "promise_computed",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(STEP_TYPES.iter().map(|t| format!("step.{t}")))
        .collect();
        expected.sort();
        assert_eq!(labels, expected, "every kind of table was read");
        for (label, parser_keys) in &census {
            let mut parser: Vec<String> = parser_keys.iter().map(|k| k.to_string()).collect();
            parser.sort();
            let mut in_schema = keys(table(label));
            in_schema.sort();
            assert_eq!(in_schema, parser, "keys of `{label}`: schema vs parser");
            assert_eq!(
                get(table(label), "additionalProperties"),
                &Json::Bool(false),
                "{label}"
            );
        }
        // Every step type is one branch of `step`, discriminated by `type`.
        let Json::Arr(branches) = get(get(defs, "step"), "oneOf") else {
            panic!("step.oneOf")
        };
        assert_eq!(branches.len(), STEP_TYPES.len());
        for ty in STEP_TYPES {
            let def = get(defs, &format!("step_{ty}"));
            assert_eq!(
                get(get(get(def, "properties"), "type"), "enum"),
                &Json::Arr(vec![Json::Str(ty.to_string())])
            );
            let reference = Json::Str(format!("#/definitions/step_{ty}"));
            assert!(
                branches.iter().any(|b| get(b, "$ref") == &reference),
                "{ty} is not in step.oneOf"
            );
        }
    }
}
