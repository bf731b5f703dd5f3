//! `clicks.csv` of an import: another tracker's click IDs into the tenant's click map, each
//! pointing at the link of its old code (imported now or earlier, or made here). Keyed by the
//! click ID, so a re-run updates what changed and duplicates nothing.

use std::collections::HashMap;

use chrono::Utc;
use clickledger_domain::click_map::{CLICKS, ForeignClick};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::{Change, Run};
use crate::Result;
use crate::entities::{imported_clicks, tracking_links};

/// Rows looked up (and inserted) per statement: well under either database's parameter limit.
const CHUNK: usize = 500;

impl Run<'_> {
    pub(super) async fn clicks(&mut self, rows: &[ForeignClick]) -> Result<()> {
        let now = Utc::now();
        for chunk in rows.chunks(CHUNK) {
            let links: HashMap<String, uuid::Uuid> = tracking_links::Entity::find()
                .select_only()
                .columns([tracking_links::Column::Code, tracking_links::Column::Id])
                .filter(tracking_links::Column::TenantId.eq(self.tenant.uuid()))
                .filter(tracking_links::Column::Code.is_in(chunk.iter().map(|c| c.tracking_code.as_str())))
                .into_tuple::<(String, uuid::Uuid)>()
                .all(self.txn)
                .await?
                .into_iter()
                .collect();
            let existing: HashMap<String, imported_clicks::Model> = imported_clicks::Entity::find()
                .filter(imported_clicks::Column::TenantId.eq(self.tenant.uuid()))
                .filter(imported_clicks::Column::ClickId.is_in(chunk.iter().map(|c| c.click_id.as_str())))
                .all(self.txn)
                .await?
                .into_iter()
                .map(|row| (row.click_id.clone(), row))
                .collect();
            let mut new_rows = Vec::new();
            for click in chunk {
                let Some(&link) = links.get(&click.tracking_code) else {
                    // Another tenant's code is as unknown here as one nobody has.
                    self.fail(CLICKS, click.line, format!("unknown tracking_code `{}`", click.tracking_code));
                    continue;
                };
                let [sub1, sub2, sub3, sub4, sub5] = click.subs.clone();
                let change = match existing.get(&click.click_id) {
                    Some(current) => {
                        let same = current.link_id == link
                            && current.clicked_at == click.clicked_at
                            && [&current.sub1, &current.sub2, &current.sub3, &current.sub4, &current.sub5]
                                .into_iter()
                                .eq(click.subs.iter());
                        if !same {
                            imported_clicks::ActiveModel {
                                tenant_id: Set(self.tenant.uuid()),
                                click_id: Set(click.click_id.clone()),
                                link_id: Set(link),
                                clicked_at: Set(click.clicked_at),
                                sub1: Set(sub1),
                                sub2: Set(sub2),
                                sub3: Set(sub3),
                                sub4: Set(sub4),
                                sub5: Set(sub5),
                                ..Default::default()
                            }
                            .update(self.txn)
                            .await?;
                        }
                        if same { Change::Unchanged } else { Change::Updated }
                    }
                    None => {
                        new_rows.push(imported_clicks::ActiveModel {
                            tenant_id: Set(self.tenant.uuid()),
                            click_id: Set(click.click_id.clone()),
                            link_id: Set(link),
                            clicked_at: Set(click.clicked_at),
                            sub1: Set(sub1),
                            sub2: Set(sub2),
                            sub3: Set(sub3),
                            sub4: Set(sub4),
                            sub5: Set(sub5),
                            created_at: Set(now),
                        });
                        Change::Created
                    }
                };
                self.summary.clicks.count(change);
                self.note(change, &format!("click `{}`", click.click_id), CLICKS, click.line);
            }
            if !new_rows.is_empty() {
                imported_clicks::Entity::insert_many(new_rows).exec(self.txn).await?;
            }
        }
        Ok(())
    }
}
