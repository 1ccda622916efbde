//! One immutable snapshot of the documentation: the parsed documents, their facets, and a tantivy index over them.
//!
//! A reindex builds a whole new snapshot and swaps it in, so a search sees the old documents or the new ones, never
//! a mix. The tantivy index lives in RAM: it is derived from the files, rebuilt at every start, and a few
//! thousand documents index in well under a second.

use crate::{DocsError, Document, Facets, Hit, Query};
use std::collections::{BTreeMap, HashMap};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STRING};
use tantivy::snippet::{Snippet, SnippetGenerator};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{DocAddress, Index, IndexWriter, Order, Searcher, TantivyDocument, Term};

const TOKENIZER: &str = "folded";
/// The words of a query that count; the rest are ignored (a query is a few words, not a document).
const MAX_WORDS: usize = 16;
/// How many indexed words a typed prefix stands for, most frequent first.
const MAX_EXPANSIONS: usize = 16;
const SNIPPET_CHARS: usize = 160;

/// Lower-cased, accent-folded words: "Gestão" and "gestao" are the same word to the index and to queries.
fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    /// The summary and the tags as text.
    summary: Field,
    headings: Field,
    body: Field,
    domain: Field,
    doc_type: Field,
    status: Field,
    tags: Field,
    /// The document's place in `Snapshot::docs`, which is sorted by title: it maps a hit back to its document
    /// and orders a search without words.
    ord: Field,
}

impl Fields {
    /// Text fields and their BM25 weights: the title counts ten times the body, summary and tags four, headings three.
    fn weighted(&self) -> [(Field, f32); 4] {
        [(self.title, 10.0), (self.summary, 4.0), (self.headings, 3.0), (self.body, 1.0)]
    }
}

pub(crate) struct Entry {
    pub path: String,
    pub doc: Document,
}

pub(crate) struct Snapshot {
    /// Sorted by title (accents and case folded), then path.
    pub docs: Vec<Entry>,
    by_path: HashMap<String, usize>,
    pub facets: Facets,
    searcher: Searcher,
    fields: Fields,
    analyzer: TextAnalyzer,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Frequencies for BM25; no positions, as there are no phrase queries (snippets re-tokenize the text).
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        title: b.add_text_field("title", text.clone()),
        summary: b.add_text_field("summary", text.clone()),
        headings: b.add_text_field("headings", text.clone()),
        body: b.add_text_field("body", text),
        domain: b.add_text_field("domain", STRING),
        doc_type: b.add_text_field("type", STRING),
        status: b.add_text_field("status", STRING),
        tags: b.add_text_field("tags", STRING),
        ord: b.add_u64_field("ord", FAST),
    };
    (b.build(), fields)
}

/// Filter values match whatever their case.
fn filter_value(v: &str) -> String {
    v.trim().to_lowercase()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The first `max` characters of a text, cut at a word boundary, with an ellipsis when cut.
fn lead(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => escape_html(text),
        Some((cut, _)) => {
            let at = text[..cut].rfind(char::is_whitespace).unwrap_or(cut);
            format!("{}…", escape_html(text[..at].trim_end()))
        }
    }
}

impl Snapshot {
    /// Indexes `docs` (path, document). Blocking: run it off the async runtime.
    pub fn build(mut docs: Vec<(String, Document)>) -> Result<Snapshot, DocsError> {
        let mut folding = analyzer();
        let mut fold = |s: &str| {
            let mut stream = folding.token_stream(s);
            let mut out = String::new();
            while stream.advance() {
                out.push_str(&stream.token().text);
                out.push(' ');
            }
            out
        };
        docs.sort_by_cached_key(|(path, d)| (fold(&d.title), path.clone()));
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        index.tokenizers().register(TOKENIZER, analyzer());
        // One indexing thread: the machine this runs on also serves orders.
        let mut writer: IndexWriter<TantivyDocument> = index.writer_with_num_threads(1, 64 << 20)?;
        let mut facets = Facets::default();
        for (ord, (_, d)) in docs.iter().enumerate() {
            let mut t = TantivyDocument::default();
            t.add_text(fields.title, &d.title);
            t.add_text(fields.summary, &d.summary);
            t.add_text(fields.headings, d.headings.join("\n"));
            t.add_text(fields.body, &d.body);
            t.add_text(fields.status, filter_value(&d.status));
            *facets.status.entry(d.status.clone()).or_default() += 1;
            if let Some(v) = &d.domain {
                t.add_text(fields.domain, filter_value(v));
                *facets.domain.entry(v.clone()).or_default() += 1;
            }
            if let Some(v) = &d.doc_type {
                t.add_text(fields.doc_type, filter_value(v));
                *facets.doc_type.entry(v.clone()).or_default() += 1;
            }
            for tag in &d.tags {
                t.add_text(fields.summary, tag);
                t.add_text(fields.tags, filter_value(tag));
                *facets.tags.entry(tag.clone()).or_default() += 1;
            }
            t.add_u64(fields.ord, ord as u64);
            writer.add_document(t)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        let searcher = index.reader_builder().reload_policy(tantivy::ReloadPolicy::Manual).try_into()?.searcher();
        let by_path = docs.iter().enumerate().map(|(i, (p, _))| (p.clone(), i)).collect();
        Ok(Snapshot {
            docs: docs.into_iter().map(|(path, doc)| Entry { path, doc }).collect(),
            by_path,
            facets,
            searcher,
            fields,
            analyzer: analyzer(),
        })
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.by_path.get(path).map(|&i| &self.docs[i])
    }

    /// The folded words of a query, without repeats, at most `MAX_WORDS`.
    fn words(&self, q: &str) -> Vec<String> {
        let mut a = self.analyzer.clone();
        let mut stream = a.token_stream(q);
        let mut out: Vec<String> = Vec::new();
        while stream.advance() && out.len() < MAX_WORDS {
            let w = &stream.token().text;
            if !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    /// The indexed words starting with `prefix`, with how many documents hold each, most frequent first.
    fn expand(&self, prefix: &str) -> Result<Vec<(String, u64)>, DocsError> {
        let mut found: HashMap<String, u64> = HashMap::new();
        for segment in self.searcher.segment_readers() {
            for (field, _) in self.fields.weighted() {
                let inverted = segment.inverted_index(field)?;
                let mut terms = inverted.terms().range().ge(prefix.as_bytes()).into_stream()?;
                while terms.advance() {
                    let Ok(word) = std::str::from_utf8(terms.key()) else { continue };
                    if !word.starts_with(prefix) {
                        break;
                    }
                    *found.entry(word.to_string()).or_default() += u64::from(terms.value().doc_freq);
                }
            }
        }
        let mut found: Vec<(String, u64)> = found.into_iter().collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        found.truncate(MAX_EXPANSIONS);
        Ok(found)
    }

    /// Ranked documents matching every word (the last one as a prefix) and every filter, plus how many match.
    pub fn search(&self, q: &Query) -> Result<(Vec<Hit>, u64), DocsError> {
        let limit = q.limit.clamp(1, 100);
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
        let filters = [(f.domain, &q.domain), (f.doc_type, &q.doc_type), (f.status, &q.status)];
        let filters = filters.into_iter().filter_map(|(field, v)| v.as_deref().map(|v| (field, v)));
        for (field, value) in filters.chain(q.tags.iter().map(|t| (f.tags, t.as_str()))) {
            let term = TermQuery::new(Term::from_field_text(field, &filter_value(value)), IndexRecordOption::Basic);
            // Filters narrow the set; they do not move the ranking.
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(term), 0.0))));
        }
        let words = self.words(&q.q);
        if words.is_empty() {
            return self.browse(clauses, limit);
        }
        // The words to highlight, rarer ones preferred by the snippet chooser.
        let mut marks: BTreeMap<String, f32> = BTreeMap::new();
        let last = words.len() - 1;
        for (i, word) in words.iter().enumerate() {
            // People type the last word partly: it stands for the words it begins.
            let variants = if i == last && word.chars().count() >= 2 {
                self.expand(word)?
            } else {
                let df: u64 = f.weighted().iter().map(|(field, _)| self.doc_freq(*field, word)).sum();
                vec![(word.clone(), df)]
            };
            if variants.iter().all(|(_, df)| *df == 0) {
                return Ok((Vec::new(), 0));
            }
            let mut any: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
            for (variant, df) in variants {
                marks.insert(variant.clone(), 1.0 / (1.0 + df as f32));
                for (field, weight) in f.weighted() {
                    let term = TermQuery::new(Term::from_field_text(field, &variant), IndexRecordOption::WithFreqs);
                    any.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term), weight))));
                }
            }
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        let query = BooleanQuery::new(clauses);
        let (total, top) = self.searcher.search(&query, &(Count, TopDocs::with_limit(limit).order_by_score()))?;
        let snippets = SnippetGenerator::new(marks, self.analyzer.clone(), f.body, SNIPPET_CHARS);
        let hits = top
            .into_iter()
            .map(|(score, at)| {
                let e = self.entry(at)?;
                Ok(self.hit(e, f64::from(score), self.snippet(&snippets, e)))
            })
            .collect::<Result<_, DocsError>>()?;
        Ok((hits, total as u64))
    }

    /// No words: the filtered documents by title, with their summaries.
    fn browse(&self, filters: Vec<(Occur, Box<dyn TantivyQuery>)>, limit: usize) -> Result<(Vec<Hit>, u64), DocsError> {
        let query: Box<dyn TantivyQuery> =
            if filters.is_empty() { Box::new(AllQuery) } else { Box::new(BooleanQuery::new(filters)) };
        let by_title = TopDocs::with_limit(limit).order_by_u64_field("ord", Order::Asc);
        let (total, top) = self.searcher.search(&query, &(Count, by_title))?;
        let hits = top
            .into_iter()
            .map(|(_, at)| {
                let e = self.entry(at)?;
                Ok(self.hit(e, 0.0, lead(&e.doc.summary, SNIPPET_CHARS)))
            })
            .collect::<Result<_, DocsError>>()?;
        Ok((hits, total as u64))
    }

    fn doc_freq(&self, field: Field, word: &str) -> u64 {
        self.searcher.doc_freq(&Term::from_field_text(field, word)).unwrap_or(0)
    }

    fn entry(&self, at: DocAddress) -> Result<&Entry, DocsError> {
        let ord = self.searcher.segment_reader(at.segment_ord).fast_fields().u64("ord")?.first(at.doc_id);
        ord.and_then(|o| self.docs.get(o as usize))
            .ok_or_else(|| DocsError::Internal(format!("a hit without its document ({at:?})")))
    }

    /// The passage with the most (and rarest) matches: from the body, else the summary, else the title; HTML
    /// with `<mark>` around the matches.
    fn snippet(&self, generator: &SnippetGenerator, e: &Entry) -> String {
        let tags = e.doc.tags.join(" ");
        for text in [e.doc.body.as_str(), e.doc.summary.as_str(), tags.as_str(), e.doc.title.as_str()] {
            let mut s: Snippet = generator.snippet(text);
            if s.is_empty() {
                continue;
            }
            s.set_snippet_prefix_postfix("<mark>", "</mark>");
            let range = s.fragment_range();
            let before = if text[..range.start].trim().is_empty() { "" } else { "…" };
            let after = if text[range.end..].trim().is_empty() { "" } else { "…" };
            return format!("{before}{}{after}", s.to_html());
        }
        lead(if e.doc.summary.is_empty() { &e.doc.body } else { &e.doc.summary }, SNIPPET_CHARS)
    }

    fn hit(&self, e: &Entry, score: f64, snippet: String) -> Hit {
        let d = &e.doc;
        Hit {
            path: e.path.clone(),
            title: d.title.clone(),
            summary: d.summary.clone(),
            domain: d.domain.clone(),
            doc_type: d.doc_type.clone(),
            tags: d.tags.clone(),
            status: d.status.clone(),
            score,
            snippet,
        }
    }
}
