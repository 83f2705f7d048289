//! Atom 1.0 output (RFC 4287, CONTRACT §6).

use super::FeedView;
use crate::model::Article;

pub fn render(view: &FeedView, articles: &[Article]) -> String {
    todo!("{view:?} {}", articles.len())
}
