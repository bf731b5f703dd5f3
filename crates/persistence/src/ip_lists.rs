//! The operator's address lists (data centres, VPN exits, a blocklist), instance-wide: loaded
//! from files by `clickledger fraud import-ip-ranges`, probed by the fraud rules. Each list is
//! stored as disjoint ranges of 16-byte keys, so one ordered probe of the primary key finds
//! the only range that can hold an address; nothing is ever scanned.

use std::net::IpAddr;

use clickledger_domain::fraud::{IpList, IpRange, ip_key};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::entities::ip_ranges;
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
    txn.commit().await?;
    Ok(())
}

/// How many ranges `list` holds.
pub async fn count(db: &Db, list: IpList) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(ip_ranges::Entity::find().filter(ip_ranges::Column::List.eq(list.as_str())).count(db.reader()).await?)
}

/// The range of `list` holding `ip`, if any: the one with the greatest start not above it
/// (one index probe), which holds it when its end is not below it.
pub(crate) async fn range_holding<C: ConnectionTrait>(
    conn: &C,
    list: IpList,
    ip: IpAddr,
) -> Result<Option<IpRange>> {
    let key = ip_key(ip);
    let Some(row) = ip_ranges::Entity::find()
        .filter(ip_ranges::Column::List.eq(list.as_str()))
        .filter(ip_ranges::Column::RangeStart.lte(key.to_vec()))
        .order_by_desc(ip_ranges::Column::RangeStart)
        .limit(1)
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let corrupt = || Error::Corrupt(format!("a range of the {list} list is not 16 bytes"));
    let range = IpRange {
        start: row.range_start.try_into().map_err(|_| corrupt())?,
        end: row.range_end.try_into().map_err(|_| corrupt())?,
    };
    Ok(range.contains(ip).then_some(range))
}
