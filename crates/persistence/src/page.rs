use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

pub const MAX_PAGE: u64 = 100;
pub const DEFAULT_PAGE: u64 = 20;

/// Keyset pagination on the time-ordered primary key: stable under concurrent inserts,
/// and as cheap for the thousandth page as for the first.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub first: Option<u64>,
}

impl PageRequest {
    pub fn limit(&self) -> u64 {
        self.first.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), has_next: self.has_next }
    }

    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page { items: self.items.into_iter().map(f).collect::<Result<_, E>>()?, has_next: self.has_next })
    }
}

pub(crate) async fn fetch<E, C>(
    select: Select<E>,
    id: E::Column,
    request: PageRequest,
    conn: &C,
) -> Result<Page<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let limit = request.limit();
    let mut select = select.order_by_asc(id);
    if let Some(after) = request.after {
        select = select.filter(id.gt(after));
    }
    let mut items = select.limit(limit + 1).all(conn).await?;
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(Page { items, has_next })
}
