//! Whether a `conversion.created` event announces a conversion with fraud flags, on the event
//! itself: the fraud alerts follow every event, and most conversions have no flag, so reading
//! the conversion behind each event to find out cost a primary-key probe per postback (at full
//! load on PostgreSQL, a tenth of the database's statement time).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Flagged,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(boolean(Events::Flagged).default(false))
                    .to_owned(),
            )
            .await?;
        // Events stored before: a created event is flagged when its conversion has flags (an
        // empty JSON list is how a conversion without flags stores them).
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE events SET flagged = TRUE WHERE kind = 'conversion.created' AND EXISTS (\
                 SELECT 1 FROM conversions c WHERE c.tenant_id = events.tenant_id \
                 AND c.id = events.conversion_id AND c.fraud_flags <> '[]')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::Flagged).to_owned()).await
    }
}
