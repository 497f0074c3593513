//! What the cluster knows of each member (kept in Raft's membership configuration) and how member
//! and cluster ids are derived.

use serde::{Deserialize, Serialize};

/// A member as the membership configuration records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Empty until the member has started and published itself (etcd lists it as unstarted).
    pub name: String,
    /// Where other members reach its peer port; the first one is used.
    pub peer_urls: Vec<String>,
    /// Where clients reach it; empty until it has started.
    pub client_urls: Vec<String>,
}

impl Member {
    pub fn peer_url(&self) -> Option<&str> {
        self.peer_urls.first().map(String::as_str)
    }
}

/// 64-bit FNV-1a: ids must be the same on every member and across releases, which the
/// standard library's hasher does not promise.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0u8]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Zero means "no member" in etcd's API.
    hash.max(1)
}

/// A member's id, the same on every member that derives it from the same peer URL and token.
pub fn member_id(peer_url: &str, token: &str) -> u64 {
    fnv1a(&[peer_url.as_bytes(), token.as_bytes()])
}

/// The id of a cluster bootstrapped with these members (in any order) and token.
pub fn cluster_id(member_ids: &[u64], token: &str) -> u64 {
    let mut sorted = member_ids.to_vec();
    sorted.sort_unstable();
    let ids: Vec<[u8; 8]> = sorted.iter().map(|id| id.to_be_bytes()).collect();
    let mut parts: Vec<&[u8]> = ids.iter().map(|id| id.as_slice()).collect();
    parts.push(token.as_bytes());
    fnv1a(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_input_and_not_on_member_order() {
        let a = member_id("http://10.0.0.1:2380", "t");
        let b = member_id("http://10.0.0.2:2380", "t");
        assert_ne!(a, b);
        assert_ne!(a, member_id("http://10.0.0.1:2380", "other"));
        assert_eq!(cluster_id(&[a, b], "t"), cluster_id(&[b, a], "t"));
        assert_ne!(cluster_id(&[a, b], "t"), cluster_id(&[a], "t"));
        assert_ne!(cluster_id(&[a, b], "t"), cluster_id(&[a, b], "u"));
    }

    #[test]
    fn ids_are_stable_across_releases() {
        // Members of one cluster may run different builds: the derivation must never change.
        assert_eq!(
            member_id("http://127.0.0.1:2380", "chainfire-cluster"),
            0x12c7_d2bc_4978_fac9
        );
    }
}
