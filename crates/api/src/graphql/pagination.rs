use std::fmt::Display;

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use clickledger_persistence::{Page, PageRequest};

use crate::Error;

/// Turns `after`/`first` into a page request. The cursor is the last seen node's ID, parsed
/// with the node type's own ID parser so a cursor from another list is refused.
pub fn request<Id>(
    after: Option<String>,
    first: Option<i32>,
    parse: impl Fn(&str, &'static str) -> Result<Id, clickledger_domain::Error>,
    uuid: impl Fn(Id) -> uuid::Uuid,
) -> Result<PageRequest, Error> {
    let after = match after {
        Some(cursor) => Some(uuid(parse(&cursor, "after")?)),
        None => None,
    };
    let first = match first {
        Some(n) if n < 0 => return Err(Error::bad_input("first", "must not be negative")),
        Some(n) => Some(n as u64),
        None => None,
    };
    Ok(PageRequest { after, first })
}

/// Builds the connection for a page fetched with `request`. `first: 0` asks for no rows (the
/// storage layer fetches at least one, which then only tells whether there is a next page).
pub fn connection<T, N>(
    mut page: Page<T>,
    request: PageRequest,
    node: impl Fn(T) -> (String, N),
) -> Connection<String, N>
where
    N: OutputType,
{
    if request.first == Some(0) {
        page.has_next = page.has_next || !page.items.is_empty();
        page.items.clear();
    }
    let mut connection = Connection::new(request.after.is_some(), page.has_next);
    connection.edges.extend(page.items.into_iter().map(|item| {
        let (cursor, node) = node(item);
        Edge::with_additional_fields(cursor, node, EmptyFields)
    }));
    connection
}

pub fn cursor(id: impl Display) -> String {
    id.to_string()
}
