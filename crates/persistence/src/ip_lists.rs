//! The operator's address lists (data centres, VPN exits, a blocklist), instance-wide: loaded
//! from files by `clickledger fraud import-ip-ranges`, looked up by the fraud rules. Each list
//! is stored as disjoint ranges of 16-byte keys. The postback writers hold the lists in memory
//! ([`IpLists`], a binary search per address) and check once per batch, with one primary-key
//! read, whether an import replaced them since.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use clickledger_domain::fraud::{IpList, IpRange, RangeTable};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

use crate::entities::{instance_settings, ip_ranges};
use crate::{Db, Error, Result};

/// Rows per multi-row insert: 3 parameters each, far below both databases' limits.
const ROWS_PER_INSERT: usize = 512;

/// Replaces `list` with `ranges` (disjoint, as `clickledger_domain::fraud::parse_ranges` gives
/// them), in one transaction: the list is never seen half loaded.
pub async fn replace(db: &Db, list: IpList, ranges: &[IpRange]) -> Result<()> {
    let txn = db.writer().begin().await?;
    ip_ranges::Entity::delete_many().filter(ip_ranges::Column::List.eq(list.as_str())).exec(&txn).await?;
    for chunk in ranges.chunks(ROWS_PER_INSERT) {
        let rows = chunk.iter().map(|range| ip_ranges::ActiveModel {
            list: Set(list.as_str().to_owned()),
            range_start: Set(range.start.to_vec()),
            range_end: Set(range.end.to_vec()),
        });
        ip_ranges::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    let generation = instance_settings::ActiveModel {
        key: Set(GENERATION_KEY.to_owned()),
        value: Set(uuid::Uuid::new_v4().to_string()),
    };
    let replace_value = OnConflict::column(instance_settings::Column::Key)
        .update_column(instance_settings::Column::Value)
        .to_owned();
    instance_settings::Entity::insert(generation)
        .on_conflict(replace_value)
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// How many ranges `list` holds.
pub async fn count(db: &Db, list: IpList) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(ip_ranges::Entity::find().filter(ip_ranges::Column::List.eq(list.as_str())).count(db.reader()).await?)
}

/// The instance's lists in memory, as of one import: the fraud rules look addresses up here
/// instead of probing storage once per address, list and postback.
#[derive(Debug, Default)]
pub struct IpLists {
    /// Which import these are (see [`GENERATION_KEY`]); empty before the first.
    generation: String,
    tables: HashMap<IpList, RangeTable>,
}

impl IpLists {
    /// The range of `list` holding `ip`, if any.
    pub fn holding(&self, list: IpList, ip: IpAddr) -> Option<IpRange> {
        self.tables.get(&list)?.holding(ip)
    }
}

/// The lists one database's writers share, reloaded when an import (by any process) changed
/// them.
#[derive(Default)]
pub struct IpListCache(tokio::sync::Mutex<Option<Arc<IpLists>>>);

/// The instance setting naming the lists' current import: every [`replace`] stores a new one
/// in its transaction, so a writer that reads it knows whether what it holds is current.
const GENERATION_KEY: &str = "ip_lists_generation";

/// The lists as of `conn`'s view of the database: one primary-key read, and a full load only
/// after an import changed them.
pub(crate) async fn current<C: ConnectionTrait>(cache: &IpListCache, conn: &C) -> Result<Arc<IpLists>> {
    let generation = instance_settings::Entity::find_by_id(GENERATION_KEY)
        .one(conn)
        .await?
        .map(|row| row.value)
        .unwrap_or_default();
    let mut held = cache.0.lock().await;
    if let Some(lists) = held.as_ref().filter(|lists| lists.generation == generation) {
        return Ok(lists.clone());
    }
    let corrupt = |list: &str| Error::Corrupt(format!("a range of the {list} list is not 16 bytes"));
    let mut ranges: HashMap<IpList, Vec<IpRange>> = HashMap::new();
    for row in ip_ranges::Entity::find()
        .order_by_asc(ip_ranges::Column::List)
        .order_by_asc(ip_ranges::Column::RangeStart)
        .all(conn)
        .await?
    {
        let list: IpList =
            row.list.parse().map_err(|_| Error::Corrupt(format!("unknown address list `{}`", row.list)))?;
        ranges.entry(list).or_default().push(IpRange {
            start: row.range_start.try_into().map_err(|_| corrupt(&row.list))?,
            end: row.range_end.try_into().map_err(|_| corrupt(&row.list))?,
        });
    }
    let lists = Arc::new(IpLists {
        generation,
        tables: ranges.into_iter().map(|(list, ranges)| (list, RangeTable::new(ranges))).collect(),
    });
    *held = Some(lists.clone());
    Ok(lists)
}
