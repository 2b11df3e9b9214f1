//! Kafka topic names: the rules every stage agrees on (which topic a table's
//! changes go to, what Kafka accepts as a name) and a message's destination.

use std::collections::HashMap;
use std::sync::Arc;

/// A topic template that cannot make topic names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic template {template:?}: {problem}")]
pub struct TemplateError {
    /// The template.
    pub template: String,
    /// What is wrong.
    pub problem: String,
}

/// A topic template: literal text and `{database}`, `{schema}`, `{table}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
}

impl TopicTemplate {
    /// Checks `text`'s placeholders.
    pub fn new(text: &str) -> Result<Self, TemplateError> {
        let error = |problem: String| TemplateError {
            template: text.to_owned(),
            problem,
        };
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| error("a `{` without `}`".into()))?;
            let name = &rest[open + 1..open + close];
            if !["database", "schema", "table"].contains(&name) {
                return Err(error(format!(
                    "unknown placeholder {{{name}}} (expected {{database}}, {{schema}}, {{table}})"
                )));
            }
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(error("a `}` without `{`".into()));
        }
        // The placeholders' values are made legal when rendered; the literal text
        // around them must be legal already, and the whole must not be empty.
        let literal = ["{database}", "{schema}", "{table}"]
            .iter()
            .fold(text.to_owned(), |literal, placeholder| {
                literal.replace(placeholder, "x")
            });
        check_topic_name(&literal).map_err(|_| {
            error(
                "does not make Kafka topic names: write letters, digits, . _ - and {database}, {schema}, {table}".into(),
            )
        })?;
        Ok(Self {
            text: text.to_owned(),
        })
    }

    /// The topic for a table, with characters Kafka does not allow replaced by `_`
    /// (as Debezium does).
    pub fn render(&self, database: &str, schema: &str, table: &str) -> String {
        let topic = self
            .text
            .replace("{database}", database)
            .replace("{schema}", schema)
            .replace("{table}", table);
        sanitize_topic(&topic)
    }
}

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;

/// Whether Kafka allows `c` in a topic name: `[a-zA-Z0-9._-]`.
fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Kafka topic names: `[a-zA-Z0-9._-]`, at most 249 characters.
pub fn sanitize_topic(topic: &str) -> String {
    topic
        .chars()
        .map(|c| if is_topic_char(c) { c } else { '_' })
        .take(MAX_TOPIC_LEN)
        .collect()
}

/// Checks a topic name as written by a user (an override, a dead-letter or state
/// topic): 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`, which Kafka refuses.
///
/// # Errors
///
/// What is wrong with it, for a spec error.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || topic == "." || topic == ".." {
        return Err(format!(
            "{topic:?} is not a Kafka topic name (1 to {MAX_TOPIC_LEN} characters, not . or ..)"
        ));
    }
    if let Some(bad) = topic.chars().find(|c| !is_topic_char(*c)) {
        return Err(format!(
            "{topic:?} is not a Kafka topic name: {bad:?} is not allowed (letters, digits, . _ -)"
        ));
    }
    Ok(())
}

/// Which topic each table's changes go to: a per-table override, else the
/// template rendered for the table.
#[derive(Debug, Clone)]
pub struct TopicNames {
    database: String,
    template: TopicTemplate,
    /// `schema.table` → topic.
    overrides: HashMap<String, String>,
}

impl TopicNames {
    /// Rules for `database`'s tables.
    pub fn new(
        database: impl Into<String>,
        template: TopicTemplate,
        overrides: HashMap<String, String>,
    ) -> Self {
        Self {
            database: database.into(),
            template,
            overrides,
        }
    }

    /// The database (`{database}` in the template).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The topic of a table (without a plugin's say).
    pub fn topic(&self, schema: &str, table: &str) -> String {
        match self.overrides.get(&format!("{schema}.{table}")) {
            Some(topic) => topic.clone(),
            None => self.template.render(&self.database, schema, table),
        }
    }
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition; `None` leaves it to the producer (a null key).
    pub partition: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_refuse_unknown_placeholders() {
        let template = TopicTemplate::new("{database}.{schema}.{table}").expect("valid");
        assert_eq!(
            template.render("shop", "public", "orders"),
            "shop.public.orders"
        );
        assert_eq!(
            template.render("shop", "public", "order items"),
            "shop.public.order_items"
        );
        assert!(TopicTemplate::new("{db}.{table}").is_err());
        assert!(TopicTemplate::new("{table").is_err());
        assert!(TopicTemplate::new("table}").is_err());
    }
}
