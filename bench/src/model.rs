//! The scale-out model of docs/SCALING.md, computed from this run's
//! measured per-entry and per-304 costs: how many sources at a 15-minute
//! cadence one daemon node and one PostgreSQL server carry, and which
//! limit comes first.

use crate::report::{row, Row};

/// What one run measured, per unit of work.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// A daemon's CPU per stored entry (fetch, parse, tags, keys, its side
    /// of the store), µs: one daemon's first fetch of every source.
    pub node_us_per_entry: f64,
    /// A daemon's CPU per refresh answered 304, µs.
    pub node_us_per_304: f64,
    /// The PostgreSQL server's CPU per stored entry and per 304, µs.
    pub db_us_per_entry: f64,
    pub db_us_per_304: f64,
    /// WAL the server writes per stored entry, bytes.
    pub wal_bytes_per_entry: f64,
    /// A daemon's peak RSS while ingesting, MB.
    pub node_peak_mb: f64,
}

/// The workload and machines the model is stated for (docs/SCALING.md
/// says why these).
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Refreshes per source per day (a 15-minute cadence: 96).
    pub refreshes_per_day: f64,
    /// New entries per source per day.
    pub new_entries_per_day: f64,
    /// Entries in a source's document: a refresh that brings one new
    /// entry still reads them all.
    pub entries_per_document: f64,
    /// vCPUs of a daemon node and of the database server, and the share
    /// of them the model lets the work use (headroom for bursts, serving,
    /// autovacuum and checkpoints).
    pub node_cores: f64,
    pub db_cores: f64,
    pub utilisation: f64,
    /// Connections per daemon (`pool_size`) and the server's limit.
    pub pool_size: f64,
    pub max_connections: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            refreshes_per_day: 96.0,
            new_entries_per_day: 48.0,
            entries_per_document: 50.0,
            node_cores: 4.0,
            db_cores: 8.0,
            utilisation: 0.6,
            pool_size: 10.0,
            max_connections: 100.0,
        }
    }
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// CPU seconds per source per day on a node and on the server.
    pub node_s_per_source_day: f64,
    pub db_s_per_source_day: f64,
    pub sources_per_node: f64,
    pub sources_per_db: f64,
    /// Nodes one server feeds before its CPU is the limit.
    pub nodes_per_db: f64,
    /// Nodes before `max_connections` is (without PgBouncer).
    pub nodes_per_connections: f64,
    /// WAL per day with the server at its CPU limit, GB.
    pub wal_gb_per_day_at_db_limit: f64,
}

impl Workload {
    pub fn capacity(&self, costs: &Costs) -> Capacity {
        const DAY: f64 = 86_400.0;
        // Each new entry arrives in a refresh of its own at worst (one new
        // entry per refresh); the other refreshes are 304s.
        let with_body = self.new_entries_per_day.min(self.refreshes_per_day);
        let not_modified = self.refreshes_per_day - with_body;
        // A refresh with a body costs the node its whole document (an
        // upper bound: known entries are parsed but not stored).
        let node_us = with_body * self.entries_per_document * costs.node_us_per_entry
            + not_modified * costs.node_us_per_304;
        // The server stores only the new entries; every refresh records its
        // fetch, which is what a 304 costs it.
        let db_us = self.new_entries_per_day * costs.db_us_per_entry
            + self.refreshes_per_day * costs.db_us_per_304;
        let node_s = node_us / 1e6;
        let db_s = db_us / 1e6;
        let sources_per_node = self.node_cores * self.utilisation * DAY / node_s;
        let sources_per_db = self.db_cores * self.utilisation * DAY / db_s;
        Capacity {
            node_s_per_source_day: node_s,
            db_s_per_source_day: db_s,
            sources_per_node,
            sources_per_db,
            nodes_per_db: sources_per_db / sources_per_node,
            nodes_per_connections: (self.max_connections / self.pool_size).floor(),
            wal_gb_per_day_at_db_limit: sources_per_db
                * self.new_entries_per_day
                * costs.wal_bytes_per_entry
                / 1e9,
        }
    }
}

/// The model's rows for the report.
pub fn rows(costs: &Costs, rows: &mut Vec<Row>) {
    let w = Workload::default();
    let c = w.capacity(costs);
    rows.push(row(
        "Scale-out model inputs (this run; docs/SCALING.md)",
        format!(
            "node {:.0} µs/entry, {:.0} µs/304, peak {:.0} MB; PostgreSQL {:.0} µs/entry, {:.0} µs/304, {:.1} KB WAL/entry",
            costs.node_us_per_entry,
            costs.node_us_per_304,
            costs.node_peak_mb,
            costs.db_us_per_entry,
            costs.db_us_per_304,
            costs.wal_bytes_per_entry / 1e3
        ),
        format!(
            "{} refreshes/source/day, {} new entries/source/day, {} entries/document",
            w.refreshes_per_day, w.new_entries_per_day, w.entries_per_document
        ),
        String::new(),
        "",
    ));
    rows.push(row(
        "Scale-out model: sources at a 15-minute cadence",
        format!(
            "{:.0} per {}-vCPU node; {:.0} per {}-vCPU PostgreSQL server ({:.1} nodes' worth); {:.1} GB of WAL per day there",
            c.sources_per_node,
            w.node_cores,
            c.sources_per_db,
            w.db_cores,
            c.nodes_per_db,
            c.wal_gb_per_day_at_db_limit
        ),
        format!(
            "{:.0}% busy; {} connections per node, {} nodes fill max_connections {}",
            w.utilisation * 100.0,
            w.pool_size,
            c.nodes_per_connections,
            w.max_connections
        ),
        String::new(),
        "",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_follows_the_costs() {
        let costs = Costs {
            node_us_per_entry: 100.0,
            node_us_per_304: 200.0,
            db_us_per_entry: 150.0,
            db_us_per_304: 300.0,
            wal_bytes_per_entry: 2_000.0,
            node_peak_mb: 60.0,
        };
        let w = Workload::default();
        let c = w.capacity(&costs);
        // 48 refreshes x 50 entries x 100 µs + 48 x 200 µs = 0.2496 s.
        assert!((c.node_s_per_source_day - 0.2496).abs() < 1e-9);
        // 48 x 150 µs + 96 x 300 µs = 0.036 s.
        assert!((c.db_s_per_source_day - 0.036).abs() < 1e-9);
        assert!((c.sources_per_node - 4.0 * 0.6 * 86_400.0 / 0.2496).abs() < 1e-6);
        assert_eq!(c.nodes_per_connections, 10.0);
        // Twice the database's per-entry cost: fewer sources per server.
        let dearer = Costs {
            db_us_per_entry: 300.0,
            ..costs
        };
        assert!(w.capacity(&dearer).sources_per_db < c.sources_per_db);
    }
}
