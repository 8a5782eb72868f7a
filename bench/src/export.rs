//! The roster export at the size the issue names: 5,000 saved teams of 11 players each,
//! downloaded as CSV and as XLSX from the release `intake-admin`, each by a fresh process so
//! that its peak resident memory (`VmHWM`) is that export's alone.

use std::time::Instant;

use futures::StreamExt;

use crate::report::{Row, Table};
use crate::system::System;

const TEAMS: i64 = 5_000;
const PLAYERS: i64 = 11;
/// The admin's peak memory while exporting, whatever the number of teams.
const MEMORY_LIMIT_MIB: f64 = 64.0;

/// Saves `TEAMS` teams (players and a document each) in one statement, as the worker would
/// have left them: the export reads only what is stored, so how it got there does not matter.
async fn fill(system: &System) -> anyhow::Result<()> {
    sqlx::query(
        "WITH t AS (
            INSERT INTO teams (registration_id, team_id, team_name, captain_name, captain_phone,
                               captain_email, vice_captain_name, vice_captain_phone,
                               vice_captain_email, request_id, submitted_at, created_at)
            SELECT md5('bench-export-' || n)::uuid, 'ICCT-' || lpad(n::text, 4, '0'),
                   'Export Team ' || lpad(n::text, 6, '0'), 'Arjun Mehta',
                   '9' || lpad(n::text, 9, '0'), 'arjun.' || n || '@example.org', 'Ravi Kumar',
                   '9123456780', 'ravi@example.org', 'bench-export', now(),
                   now() - ($1 - n) * interval '1 second'
            FROM generate_series(1, $1) AS n
            RETURNING registration_id
         ), p AS (
            INSERT INTO players (registration_id, position, name, role)
            SELECT t.registration_id, i, 'Player Number ' || chr(65 + i::int) || ' Kumar',
                   (ARRAY['batsman', 'bowler', 'all-rounder', 'wicket-keeper'])[i % 4 + 1]
            FROM t, generate_series(0, $2 - 1) AS i
         )
         INSERT INTO documents (registration_id, kind, public_id, secure_url, content_type, bytes, sha256)
         SELECT registration_id, 'payment_receipt', 'bench/' || registration_id,
                'https://res.example/bench/' || registration_id, 'image/png', 2048, 'x'
         FROM t",
    )
    .bind(TEAMS)
    .bind(PLAYERS)
    .execute(&system.pool)
    .await?;
    Ok(())
}

/// What one download measured.
struct Download {
    seconds: f64,
    bytes: usize,
    /// Newlines in the body: the CSV's records, header included.
    lines: usize,
}

async fn download(system: &System, url: &str) -> anyhow::Result<Download> {
    let started = Instant::now();
    let response = system
        .client
        .get(url)
        .bearer_auth(crate::system::ADMIN_TOKEN)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "export answered {}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    );
    let (mut bytes, mut lines) = (0, 0);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    Ok(Download {
        seconds: started.elapsed().as_secs_f64(),
        bytes,
        lines,
    })
}

/// 7. The roster export: time per download and the admin's peak memory, per format.
pub async fn export(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system.reset().await?;
    let filled = Instant::now();
    fill(system).await?;
    eprintln!(
        "export: {TEAMS} teams saved by SQL in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    let rows = TEAMS * PLAYERS;
    for format in ["csv", "xlsx"] {
        let admin = system.admin().await?;
        let idle = admin.rss_mib();
        let got = download(
            system,
            &admin.url(&format!("/admin/v1/teams/export?format={format}")),
        )
        .await?;
        let peak = admin.peak_rss_mib();
        drop(admin);
        if format == "csv" {
            anyhow::ensure!(
                got.lines as i64 == rows + 1,
                "the CSV has {} lines, not {}",
                got.lines,
                rows + 1
            );
        }
        let size = got.bytes as f64 / (1024.0 * 1024.0);
        table.push(Row::info(
            &format!(
                "Admin: {} export of {TEAMS} teams × {PLAYERS} players, time",
                format.to_uppercase()
            ),
            &format!("{:.2} s", got.seconds),
            &format!(
                "{rows} rows, {size:.1} MiB, {:.0} rows/s; one download, request to last byte",
                rows as f64 / got.seconds.max(1e-9)
            ),
        ));
        let mut memory = Row::memory(
            &format!(
                "Admin: peak RSS, {} export of {TEAMS} teams (idle {idle:.0} MiB)",
                format.to_uppercase()
            ),
            peak,
            MEMORY_LIMIT_MIB,
        );
        memory.notes = format!("VmHWM of a fresh process; the file is {size:.1} MiB");
        table.push(memory);
    }
    system.reset().await?;
    Ok(())
}
