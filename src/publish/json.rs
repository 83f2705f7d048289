//! JSON Feed 1.1 output.

use super::FeedView;
use crate::model::Article;

pub fn render(view: &FeedView, articles: &[Article]) -> String {
    todo!("{view:?} {}", articles.len())
}
