//! A dataset repository's file list through the Hub's tree API
//! (`/api/datasets/{repo}/tree/{revision}?recursive=true`), every page: the Hub answers a
//! large repository in pages and names the next one in a `Link: <url>; rel="next"` header.
//! A process lists each repository revision once: a run opens its sources again at every
//! evaluation and must see the same shards each time, however the repository changes.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;

use super::hub::{HubDataset, HubOptions, hub_error};
use crate::error::Result;

/// One entry of a tree page.
#[derive(Deserialize)]
struct TreeEntry {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    kind: String,
    /// Path from the repository root.
    path: String,
}

/// The listings this process made, by endpoint, repository and revision.
type Listings = Mutex<HashMap<(String, String, String), Vec<String>>>;

/// Every file path of `dataset`'s repository at `revision`: the Hub's listing, made once a
/// process.
pub(crate) fn list_files(options: &HubOptions, dataset: &HubDataset, revision: &str) -> Result<Vec<String>> {
    static LISTINGS: OnceLock<Listings> = OnceLock::new();
    let listings = LISTINGS.get_or_init(Listings::default);
    let key = (options.endpoint.clone(), dataset.repo.clone(), revision.to_string());
    if let Some(files) = listings.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(files.clone());
    }
    let files = list_pages(options, dataset, revision)?;
    listings.lock().unwrap_or_else(|e| e.into_inner()).insert(key, files.clone());
    Ok(files)
}

/// Every page of the listing.
fn list_pages(options: &HubOptions, dataset: &HubDataset, revision: &str) -> Result<Vec<String>> {
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(60)).build();
    let revision_in_url = revision.replace('/', "%2F");
    let mut url = format!(
        "{}/api/datasets/{}/tree/{revision_in_url}?recursive=true&expand=false",
        options.endpoint, dataset.repo
    );
    let mut files = Vec::new();
    for page in 1.. {
        let what = format!("listing the files at `{revision}` (page {page})");
        let response = options.with_retries(&dataset.repo, &what, is_transient, || {
            let request = agent.get(&url);
            match &options.token {
                Some(token) => request.set("Authorization", &format!("Bearer {token}")).call(),
                None => request.call(),
            }
            .map_err(|e| described(e, dataset, revision))
        })?;
        let next = response.header("link").and_then(next_page);
        let entries: Vec<TreeEntry> =
            response.into_json().map_err(|e| hub_error(&dataset.repo, format!("{what}: not a tree listing ({e})")))?;
        files.extend(entries.into_iter().filter(|e| e.kind == "file").map(|e| e.path));
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok(files)
}

/// A failed request: its status (0 for a transport failure) and what to tell the user.
pub(crate) struct RequestError {
    status: u16,
    message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn is_transient(e: &RequestError) -> bool {
    e.status == 0 || e.status == 429 || e.status >= 500
}

/// The Hub's answer in words: 401 and 404 name the likely cause.
fn described(e: ureq::Error, dataset: &HubDataset, revision: &str) -> RequestError {
    match e {
        ureq::Error::Status(status, response) => {
            let body = response.into_string().unwrap_or_default();
            let message = match status {
                401 | 403 => format!("access denied ({status}): a private or gated dataset needs HF_TOKEN"),
                404 => format!(
                    "no dataset repository `{}` with a revision `{revision}` on the Hub (404: {})",
                    dataset.repo,
                    body.trim()
                ),
                _ => format!("the Hub answered {status}: {}", body.trim()),
            };
            RequestError { status, message }
        }
        ureq::Error::Transport(transport) => RequestError { status: 0, message: transport.to_string() },
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let link =
            "<https://huggingface.co/api/datasets/allenai/c4/tree/main?recursive=true&cursor=ZXlK>; rel=\"next\"";
        assert_eq!(
            super::next_page(link).as_deref(),
            Some("https://huggingface.co/api/datasets/allenai/c4/tree/main?recursive=true&cursor=ZXlK")
        );
        assert_eq!(super::next_page("<https://x/y>; rel=\"prev\""), None);
    }
}
