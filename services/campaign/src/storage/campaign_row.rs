//! A campaign row as both backends read it (instants as [`StoredInstant`]: `timestamptz` in
//! Postgres, microseconds in SQLite), and its one conversion into a [`Campaign`]; the column list
//! and the stored form of a kind.

use sqlx::types::Json;
use tierline_runtime::instant::StoredInstant;
use uuid::Uuid;

use crate::{
    CampaignError,
    domain::campaign::{Campaign, Definition, Kind, LaunchProgress, ProgramFacts, Status},
};

pub(crate) const COLUMNS: &str = "id, status, definition, program, revision, created_by, created_at, updated_at, launched_at, \
     completed_at, cancelled_at, cancel_reason, launch_matched, launch_cursor, launch_complete";

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub(crate) id: Uuid,
    pub(crate) status: String,
    pub(crate) definition: Json<Definition>,
    pub(crate) program: Json<ProgramFacts>,
    pub(crate) revision: i64,
    pub(crate) created_by: String,
    pub(crate) created_at: StoredInstant,
    pub(crate) updated_at: StoredInstant,
    pub(crate) launched_at: Option<StoredInstant>,
    pub(crate) completed_at: Option<StoredInstant>,
    pub(crate) cancelled_at: Option<StoredInstant>,
    pub(crate) cancel_reason: String,
    pub(crate) launch_matched: i64,
    pub(crate) launch_cursor: Option<Uuid>,
    pub(crate) launch_complete: bool,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = CampaignError;

    fn try_from(row: CampaignRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            definition: row.definition.0,
            program: row.program.0,
            status: Status::parse(&row.status).ok_or_else(|| {
                CampaignError::Internal(format!("campaign status {:?}", row.status))
            })?,
            revision: row.revision,
            created_by: row.created_by,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            launched_at: row.launched_at.map(Into::into),
            completed_at: row.completed_at.map(Into::into),
            cancelled_at: row.cancelled_at.map(Into::into),
            cancel_reason: row.cancel_reason,
            launch: LaunchProgress {
                matched: row.launch_matched,
                cursor: row.launch_cursor,
                complete: row.launch_complete,
            },
        })
    }
}

pub(crate) fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::OneShot => "one_shot",
        Kind::Triggered => "triggered",
    }
}
