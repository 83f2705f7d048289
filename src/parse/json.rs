//! JSON Feed leniency. feed-rs deserializes JSON Feed strictly: a numeric
//! item id, a missing feed title or one attachment without a MIME type fails
//! the whole feed. We repair the document as a `serde_json::Value` first:
//! wrong-typed optional fields are dropped, numeric ids become strings.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::prepare::{person_text_for_feed_rs, ItemExtras};

/// A JSON Feed ready for feed-rs, plus what feed-rs does not keep apart.
#[derive(Debug)]
pub(crate) struct PreparedJson {
    pub json: String,
    /// `home_page_url`: feed-rs mixes it into the links with `feed_url`.
    pub home_page_url: Option<String>,
    /// Per item, what feed-rs drops (JSON Feed 1.1's item `language`);
    /// empty when no item has any.
    pub items: Vec<ItemExtras>,
    /// `hubs[].url` (WebSub), which feed-rs does not read.
    pub hubs: Vec<String>,
}

const STRING_FIELDS: &[&str] = &[
    "home_page_url",
    "feed_url",
    "description",
    "icon",
    "favicon",
    "language",
];
const ITEM_STRING_FIELDS: &[&str] = &[
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "date_published",
    "date_modified",
    "language",
];

/// Repairs a JSON Feed; `Err` says why the text is not one.
pub(crate) fn prepare_json(text: &str) -> Result<PreparedJson, String> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let feed = value
        .as_object_mut()
        .ok_or_else(|| "JSON document is not a JSON Feed (not an object)".to_string())?;

    let version_ok = feed
        .get("version")
        .and_then(Value::as_str)
        .is_some_and(|v| v.contains("jsonfeed.org/version/1"));
    if !version_ok && !feed.get("items").is_some_and(Value::is_array) {
        return Err("JSON document is not a JSON Feed (no version, no items)".into());
    }
    // feed-rs only accepts the https spelling of the version URL.
    feed.insert(
        "version".into(),
        Value::from("https://jsonfeed.org/version/1.1"),
    );
    if !feed.get("title").is_some_and(Value::is_string) {
        feed.insert("title".into(), Value::from(""));
    }
    keep_strings(feed, STRING_FIELDS);
    clean_authors(feed);

    let items: Vec<Value> = match feed.remove("items") {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(mut item) => {
                    clean_item(&mut item);
                    Some(Value::Object(item))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let extras: Vec<ItemExtras> = items
        .iter()
        .map(|item| ItemExtras {
            language: item
                .get("language")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..ItemExtras::default()
        })
        .collect();
    let any_extras = extras.iter().any(|e| e.language.is_some());
    feed.insert("items".into(), Value::Array(items));

    let home_page_url = feed
        .get("home_page_url")
        .and_then(Value::as_str)
        .map(str::to_string);
    let hubs = match feed.remove("hubs") {
        Some(Value::Array(hubs)) => hubs
            .iter()
            .filter_map(|hub| hub.get("url")?.as_str())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Ok(PreparedJson {
        json: value.to_string(),
        home_page_url,
        items: if any_extras { extras } else { Vec::new() },
        hubs,
    })
}

fn clean_item(item: &mut Map<String, Value>) {
    match item.get("id") {
        Some(Value::Number(n)) => {
            let id = n.to_string();
            item.insert("id".into(), Value::from(id));
        }
        Some(Value::String(_)) | None => {}
        Some(_) => {
            item.remove("id");
        }
    }
    keep_strings(item, ITEM_STRING_FIELDS);
    match item.remove("tags") {
        Some(Value::Array(tags)) => {
            let tags: Vec<Value> = tags.into_iter().filter(Value::is_string).collect();
            item.insert("tags".into(), Value::Array(tags));
        }
        Some(Value::String(tag)) => {
            item.insert("tags".into(), Value::Array(vec![Value::String(tag)]));
        }
        _ => {}
    }
    if let Some(Value::Array(attachments)) = item.remove("attachments") {
        let attachments: Vec<Value> = attachments
            .into_iter()
            .filter_map(|a| match a {
                Value::Object(mut a) if a.get("url").is_some_and(Value::is_string) => {
                    if !a.get("mime_type").is_some_and(Value::is_string) {
                        a.insert("mime_type".into(), Value::from("application/octet-stream"));
                    }
                    keep_strings(&mut a, &["title"]);
                    if !a.get("size_in_bytes").is_some_and(Value::is_u64) {
                        a.remove("size_in_bytes");
                    }
                    Some(Value::Object(a))
                }
                _ => None,
            })
            .collect();
        item.insert("attachments".into(), Value::Array(attachments));
    }
    clean_authors(item);
}

/// `author` must be an object and `authors` a list of objects, each with
/// string `name` and `url`; a name is made one feed-rs splits without
/// panicking.
fn clean_authors(obj: &mut Map<String, Value>) {
    match obj.get_mut("author") {
        Some(Value::Object(author)) => keep_strings(author, &["name", "url"]),
        Some(Value::String(name)) => {
            let name = std::mem::take(name);
            obj.insert("author".into(), serde_json::json!({ "name": name }));
        }
        Some(_) => {
            obj.remove("author");
        }
        None => {}
    }
    if let Some(Value::Object(author)) = obj.get_mut("author") {
        guard_name(author);
    }
    // Anything but a list is dropped (removed above and not put back).
    if let Some(Value::Array(authors)) = obj.remove("authors") {
        let authors: Vec<Value> = authors
            .into_iter()
            .filter_map(|a| match a {
                Value::Object(mut a) => {
                    keep_strings(&mut a, &["name", "url"]);
                    guard_name(&mut a);
                    Some(Value::Object(a))
                }
                _ => None,
            })
            .collect();
        obj.insert("authors".into(), Value::Array(authors));
    }
}

fn guard_name(author: &mut Map<String, Value>) {
    if let Some(Value::String(name)) = author.get_mut("name") {
        if let Cow::Owned(safe) = person_text_for_feed_rs(name) {
            *name = safe;
        }
    }
}

/// Removes the listed fields when present with a type other than string.
fn keep_strings(obj: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        if obj
            .get(*field)
            .is_some_and(|v| !v.is_string() && !v.is_null())
        {
            obj.remove(*field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_what_feed_rs_would_reject() {
        let prepared = prepare_json(
            r#"{"version":"http://jsonfeed.org/version/1","home_page_url":"https://example.org/",
                "author":"Ann","items":[{"id":42,"title":7,"tags":["a",1],"url":"/p/1",
                "attachments":[{"url":"a.mp3"}]}, "junk"]}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&prepared.json).unwrap();
        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(v["title"], "");
        assert_eq!(v["author"]["name"], "Ann");
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert_eq!(v["items"][0]["id"], "42");
        assert!(v["items"][0].get("title").is_none());
        assert_eq!(v["items"][0]["tags"], serde_json::json!(["a"]));
        assert_eq!(
            v["items"][0]["attachments"][0]["mime_type"],
            "application/octet-stream"
        );
        assert_eq!(
            prepared.home_page_url.as_deref(),
            Some("https://example.org/")
        );
    }

    #[test]
    fn other_json_is_not_a_feed() {
        assert!(prepare_json(r#"{"hello":"world"}"#)
            .unwrap_err()
            .contains("not a JSON Feed"));
        assert!(prepare_json("[1,2]")
            .unwrap_err()
            .contains("not a JSON Feed"));
        assert!(prepare_json("{oops")
            .unwrap_err()
            .contains("malformed JSON"));
    }
}
