//! MuHash3072, Bitcoin Core's order-independent set hash (being written).
