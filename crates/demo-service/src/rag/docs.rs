//! The rag demo's document store: the corpus (JSON lines: id, title, text) in memory,
//! searched by shared words weighted by rarity. `POST /search {"query", "k"}` answers the
//! `k` best documents that share a word with the query: however many are asked for (a
//! limit is the answer service's job, and the store counts what it served).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::text::words;
use crate::server::{ServedRequest, json, reply, serve};

#[derive(Debug, Clone)]
pub struct DocsConfig {
    pub port: u16,
    pub corpus: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

struct Store {
    documents: Vec<Document>,
    /// Each document's words.
    words: Vec<BTreeSet<String>>,
    /// Inverse document frequency by word.
    idf: HashMap<String, f64>,
    searches: AtomicU64,
    served: AtomicU64,
}

#[derive(Deserialize)]
struct Search {
    query: String,
    #[serde(default = "five")]
    k: usize,
}

fn five() -> usize {
    5
}

impl Store {
    fn load(corpus: &std::path::Path) -> std::io::Result<Store> {
        let text = std::fs::read_to_string(corpus)?;
        let mut documents = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let doc: Document = serde_json::from_str(line).map_err(|e| {
                std::io::Error::other(format!("{}:{}: {e}", corpus.display(), i + 1))
            })?;
            documents.push(doc);
        }
        let words: Vec<BTreeSet<String>> = documents
            .iter()
            .map(|d| {
                words(&format!("{} {}", d.title, d.text))
                    .into_iter()
                    .collect()
            })
            .collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for set in &words {
            for w in set {
                *counts.entry(w.clone()).or_default() += 1;
            }
        }
        let n = documents.len() as f64;
        let idf = counts
            .into_iter()
            .map(|(w, c)| (w, (n / c as f64).ln() + 1.0))
            .collect();
        Ok(Store {
            documents,
            words,
            idf,
            searches: AtomicU64::new(0),
            served: AtomicU64::new(0),
        })
    }

    /// The `k` best documents sharing a word with the query, best first (ties by order).
    fn search(&self, query: &str, k: usize) -> Vec<&Document> {
        let asked: BTreeSet<String> = words(query).into_iter().collect();
        let mut scored: Vec<(f64, usize)> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, set)| {
                let score = set.intersection(&asked).map(|w| self.idf[w]).sum::<f64>();
                (score, i)
            })
            .filter(|(score, _)| *score > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| &self.documents[i])
            .collect()
    }
}

/// Serves until the process ends; see [`gauntlet_net::BoxFuture`] for why it is boxed here.
#[inline(never)]
pub fn run_docs(config: DocsConfig) -> gauntlet_net::BoxFuture<'static, std::io::Result<()>> {
    Box::pin(serving(config))
}

async fn serving(config: DocsConfig) -> std::io::Result<()> {
    let store = Arc::new(Store::load(&config.corpus)?);
    let handler = move |request: ServedRequest| {
        let store = store.clone();
        async move {
            match (&request.method, request.raw_path.as_str()) {
                (_, "/healthz") => reply(StatusCode::OK, "ok\n"),
                (&Method::POST, "/search") => {
                    let Ok(search) = serde_json::from_slice::<Search>(&request.body) else {
                        return reply(StatusCode::BAD_REQUEST, "expected {\"query\", \"k\"}\n");
                    };
                    let found = store.search(&search.query, search.k);
                    store.searches.fetch_add(1, Ordering::Relaxed);
                    store
                        .served
                        .fetch_add(found.len() as u64, Ordering::Relaxed);
                    json(StatusCode::OK, &serde_json::json!({"documents": found}))
                }
                (_, "/metrics") => reply(
                    StatusCode::OK,
                    format!(
                        "# TYPE docs_searches_total counter\ndocs_searches_total {}\n\
                         # TYPE docs_documents_served_total counter\ndocs_documents_served_total {}\n",
                        store.searches.load(Ordering::Relaxed),
                        store.served.load(Ordering::Relaxed)
                    ),
                ),
                _ => reply(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    };
    serve(config.port, Arc::new(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_about_the_question_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("corpus.jsonl");
        std::fs::write(
            &corpus,
            concat!(
                r#"{"id": "a", "title": "Ember lamp", "text": "The Ember lamp costs 30 euros."}"#,
                "\n",
                r#"{"id": "b", "title": "Ember backpack", "text": "The Ember backpack costs 285 euros."}"#,
                "\n",
                r#"{"id": "c", "title": "Onyx backpack", "text": "The Onyx backpack costs 12 euros."}"#,
                "\n"
            ),
        )
        .unwrap();
        let store = Store::load(&corpus).unwrap();
        let found = store.search("How much does the Ember backpack cost?", 2);
        assert_eq!(found[0].id, "b");
        assert_eq!(found.len(), 2);
        assert!(store.search("zebra", 5).is_empty());
    }
}
