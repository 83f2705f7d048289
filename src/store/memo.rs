//! Articles of tag-driven pages, complete with tags, sources and related
//! links, remembered at one content version by both backends' page readers
//! (sqlite/page_reader.rs, postgres.rs). Filtered views share most of their
//! articles (the newest of each tag): a page then reads only its
//! candidates' ids from the tag index and the articles no page read before,
//! and the server renders each shared article's entry once.

use crate::model::Article;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most articles remembered (~2-3 KB each): the working set of filtered
/// views over the newest stories, bounded whatever the store's size.
const MEMO_ARTICLES: usize = 8_192;

/// How long remembered articles may be served (see `ArticleMemo::since`).
const MEMO_AGE: Duration = Duration::from_secs(60);

pub(super) struct ArticleMemo {
    /// The content version the articles were read at.
    pub(super) version: i64,
    articles: HashMap<i64, Arc<Article>>,
    /// When `articles` started filling: a source's title or site (part of
    /// each article's `atom:source`) changes without a new version, so
    /// articles are read again at least this often, as cached feeds are
    /// rendered again (server/cache.rs).
    since: Instant,
}

impl ArticleMemo {
    pub(super) fn new(version: i64) -> ArticleMemo {
        ArticleMemo {
            version,
            articles: HashMap::new(),
            since: Instant::now(),
        }
    }

    /// Forgets everything once `MEMO_AGE` old.
    pub(super) fn expire(&mut self) {
        if self.since.elapsed() > MEMO_AGE {
            self.articles.clear();
            self.since = Instant::now();
        }
    }

    pub(super) fn forget(&mut self, id: i64) {
        self.articles.remove(&id);
    }

    /// The remembered ones among `ids`.
    pub(super) fn remembered(
        &self,
        ids: impl IntoIterator<Item = i64>,
    ) -> HashMap<i64, Arc<Article>> {
        ids.into_iter()
            .filter_map(|id| Some((id, self.articles.get(&id)?.clone())))
            .collect()
    }

    /// Remembers `articles`, read at `version`, unless the version moved
    /// meanwhile (they may be older), up to `MEMO_ARTICLES`.
    pub(super) fn remember<'a>(
        &mut self,
        version: i64,
        articles: impl IntoIterator<Item = &'a Arc<Article>>,
    ) {
        if self.version != version {
            return;
        }
        for article in articles {
            if self.articles.len() >= MEMO_ARTICLES {
                break;
            }
            self.articles.insert(article.id, article.clone());
        }
    }
}
