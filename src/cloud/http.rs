//! reqwest-backed HttpClient (placeholder until the adapter lands).
