//! Kind tables: each section declares once which fields each of its kinds takes; unknown-kind and unused-field errors come from the table.

/// A section's kinds with the kind-specific fields each takes (fields every kind takes,
/// such as `target` or `at`, are not listed).
pub(super) struct KindTable {
    /// The key that names the kind (`kind`, `dist`).
    pub key: &'static str,
    /// (kind, the fields it takes), in the order the documentation lists them.
    pub kinds: &'static [(&'static str, &'static [&'static str])],
}

impl KindTable {
    /// Every kind's name, for "unknown kind; known: ..." messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|(k, _)| *k).collect()
    }

    /// The fields `kind` takes (None: no such kind).
    pub fn takes(&self, kind: &str) -> Option<&'static [&'static str]> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)
    }

    /// For each field that is set but not taken by `kind`: (the field, the message).
    pub fn unused<'a>(
        &'a self,
        kind: &'a str,
        takes: &'a [&'a str],
        set: &'a [(&'static str, bool)],
    ) -> impl Iterator<Item = (&'static str, String)> + 'a {
        set.iter()
            .filter(move |(field, on)| *on && !takes.contains(field))
            .map(move |(field, _)| {
                let takes = if takes.is_empty() {
                    "nothing of its own".to_string()
                } else {
                    takes.join(", ")
                };
                (
                    *field,
                    format!(
                        "`{field}` is not used by {} = {kind:?}; it takes: {takes}",
                        self.key
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: KindTable = KindTable {
        key: "kind",
        kinds: &[("a", &["x"]), ("b", &[])],
    };

    #[test]
    fn a_field_another_kind_takes_is_reported_with_what_this_kind_takes() {
        assert_eq!(T.names(), vec!["a", "b"]);
        assert_eq!(T.takes("c"), None);
        let set = [("x", true), ("y", false)];
        let b: Vec<_> = T.unused("b", T.takes("b").unwrap(), &set).collect();
        assert_eq!(
            b,
            vec![(
                "x",
                "`x` is not used by kind = \"b\"; it takes: nothing of its own".to_string()
            )]
        );
        assert_eq!(T.unused("a", T.takes("a").unwrap(), &set).count(), 0);
    }
}
