//! The JVM programs that judge weir's output (`tests/jvm`, built by
//! `scripts/fetch-judges.sh`): Debezium's own PostgreSQL connector as the oracle weir's
//! events are compared with, Flink's `debezium-json` format as a reader, and Kafka
//! Connect with Debezium's JDBC sink as a consumer.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::HarnessError;

/// Where the judges are: `$WEIR_JUDGES_HOME`, else the build `fetch-judges.sh` made
/// last (`~/.cache/weir/judges/current`).
pub fn judges_home() -> PathBuf {
    if let Some(home) = std::env::var_os("WEIR_JUDGES_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/weir/judges/current")
}

/// A `java` command running `main_class` of the judges, quiet unless
/// `WEIR_JUDGES_LOG` asks for more (`info`, `debug`).
/// How a judge's JVM is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JvmTuning {
    /// Quick to start and small: the serial collector and the C1 compiler only,
    /// for the conformance tests, where a judge reads a few hundred events.
    StartFast,
    /// The JVM's defaults (G1, both compilers), as Kafka Connect runs in
    /// production: what a benchmark must compare with.
    Production,
}

/// Which jars a judge's JVM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jars {
    /// The judges and `libs/` (Debezium, Flink 2.3, Kafka Connect, Canal, DTS).
    Judges,
    /// Those and, after them, Paimon's Flink 1.20 bundle (`paimon/`), whose own
    /// Flink classes and service files would disturb the other judges.
    JudgesAndPaimon,
}

fn java(
    main_class: &str,
    heap_mb: u32,
    tuning: JvmTuning,
    jars: Jars,
) -> Result<Command, HarnessError> {
    let home = judges_home();
    if !home.join("complete").exists() {
        return Err(HarnessError::Command {
            what: "finding the JVM judges",
            detail: format!(
                "{} is not a complete build; run scripts/fetch-judges.sh",
                home.display()
            ),
        });
    }
    let mut command = Command::new("java");
    command.arg(format!("-Xmx{heap_mb}m"));
    if tuning == JvmTuning::StartFast {
        command
            .arg("-XX:+UseSerialGC")
            .arg("-XX:TieredStopAtLevel=1");
    }
    // DTS's SDK reads the JDK's time zone table from an internal package
    // (`sun.util.calendar`), which Java 17 does not export by default.
    command.arg("--add-exports=java.base/sun.util.calendar=ALL-UNNAMED");
    let mut classpath = format!(
        "{}:{}/*",
        home.join("weir-judges.jar").display(),
        home.join("libs").display()
    );
    if jars == Jars::JudgesAndPaimon {
        classpath.push_str(&format!(":{}/*", home.join("paimon").display()));
    }
    command.arg("-cp").arg(classpath).arg(main_class);
    Ok(command)
}

/// The command line of Avro's compatibility check (`AvroCompatibility`), for the
/// test registry's `--avro-judge`: one JVM answers every question of a run.
pub fn avro_compatibility_command() -> Result<String, HarnessError> {
    let command = java(
        "dev.weir.judges.AvroCompatibility",
        256,
        JvmTuning::StartFast,
        Jars::Judges,
    )?;
    let quote =
        |arg: &std::ffi::OsStr| format!("'{}'", arg.to_string_lossy().replace('\'', "'\\''"));
    let mut line = quote(command.get_program());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    Ok(line)
}

/// One record Debezium emitted, as a Kafka consumer of Debezium on Connect would read
/// it: key and value written by Connect's `JsonConverter` with schemas off and on,
/// headers by Connect's default `SimpleHeaderConverter`; and the Avro schemas an Avro
/// converter would register for them (Apicurio's `AvroData`, Confluent's
/// conventions), as JSON text.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OracleEvent {
    pub topic: String,
    pub key: Json,
    pub value: Json,
    pub key_schema: Json,
    pub value_schema: Json,
    pub headers: BTreeMap<String, Option<String>>,
    pub avro_key_schema: Option<String>,
    pub avro_value_schema: Option<String>,
}

/// The directory a judge runs in: its properties files, its output, and
/// `judge.log` for what it writes to stderr.
#[derive(Debug)]
struct JudgeDir(tempfile::TempDir);

impl JudgeDir {
    fn new() -> Result<Self, HarnessError> {
        tempfile::tempdir()
            .map(JudgeDir)
            .map_err(|e| HarnessError::io("make a directory", e))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.path().join(file)
    }

    /// Writes `properties` as `file`, and returns its path.
    fn write(&self, file: &str, properties: &[(&str, String)]) -> Result<PathBuf, HarnessError> {
        let path = self.path(file);
        write_properties(&path, properties)?;
        Ok(path)
    }

    /// Starts `main_class` with `args`, stderr into `judge.log`.
    fn spawn(
        self,
        main_class: &str,
        (heap_mb, tuning): (u32, JvmTuning),
        args: &[PathBuf],
    ) -> Result<JudgeProcess, HarnessError> {
        let log = fs::File::create(self.path("judge.log"))
            .map_err(|e| HarnessError::io("create judge.log", e))?;
        let process = java(main_class, heap_mb, tuning, Jars::Judges)?
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| HarnessError::io("start java", e))?;
        Ok(JudgeProcess { dir: self, process })
    }
}

/// A judge running as a JVM process in its [`JudgeDir`]. Killed when dropped.
#[derive(Debug)]
struct JudgeProcess {
    dir: JudgeDir,
    process: Child,
}

impl JudgeProcess {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path(file)
    }

    /// How it exited, when it did.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_wait().ok().flatten()
    }

    /// What it logged, for failure messages.
    fn log(&self) -> String {
        fs::read_to_string(self.path("judge.log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.process.id()
    }
}

impl Drop for JudgeProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Debezium's PostgreSQL connector in the embedded engine, running beside weir on its
/// own slot. Stopped (killed) when dropped.
#[derive(Debug)]
pub struct DebeziumOracle {
    judge: JudgeProcess,
}

impl DebeziumOracle {
    /// Starts the connector with `properties` (Debezium's names: `database.hostname`,
    /// `slot.name`, `topic.prefix`, …); `connector.class` and an in-memory offset
    /// store are filled in.
    pub fn start(properties: &[(&str, String)]) -> Result<Self, HarnessError> {
        let dir = JudgeDir::new()?;
        let connector = dir.write("connector.properties", properties)?;
        let events = dir.path("events.jsonl");
        let judge = dir.spawn(
            "dev.weir.judges.DebeziumOracle",
            (512, JvmTuning::StartFast),
            &[connector, events],
        )?;
        Ok(Self { judge })
    }

    /// The file Debezium writes its events to, one JSON object a line.
    pub fn events_path(&self) -> PathBuf {
        self.judge.path("events.jsonl")
    }

    /// The events so far, in the order Debezium emitted them.
    pub fn events(&self) -> Result<Vec<OracleEvent>, HarnessError> {
        let text = fs::read_to_string(self.events_path()).unwrap_or_default();
        // The last line may be half written.
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .map(Ok)
            .collect()
    }

    /// Waits until `done` holds for the events so far, and returns them.
    pub fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&[OracleEvent]) -> bool,
    ) -> Result<Vec<OracleEvent>, HarnessError> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events()?;
            if done(&events) {
                return Ok(events);
            }
            if let Some(status) = self.judge.exited() {
                return Err(HarnessError::Command {
                    what: "Debezium",
                    detail: format!("exited ({status}) while {what}:\n{}", self.log()),
                });
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Timeout {
                    doing: format!(
                        "waiting for Debezium: {what} ({} events so far)\n{}",
                        events.len(),
                        self.log()
                    ),
                    after: within,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What Debezium logged (warnings and errors), for failure messages.
    pub fn log(&self) -> String {
        self.judge.log()
    }
}

/// One row a Flink changelog format yielded: its kind (`+I`, `-U`, `+U`, `-D`) and
/// its fields as Flink prints them (`null`, strings, arrays).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FlinkRow {
    pub kind: String,
    pub row: Vec<Json>,
}

/// Applies a Flink changelog in order to a table keyed by the first field (as text):
/// `+I`/`+U` put the row, `-U`/`-D` remove it and must find it. `what` names the
/// source in a failure.
pub fn apply_changelog(
    changelog: Vec<FlinkRow>,
    what: &str,
) -> std::collections::BTreeMap<String, Vec<Json>> {
    let mut applied = std::collections::BTreeMap::new();
    for row in changelog {
        let id = row.row[0].as_str().expect("a text id").to_owned();
        match row.kind.as_str() {
            "+I" | "+U" => {
                applied.insert(id, row.row);
            }
            "-U" | "-D" => {
                assert!(
                    applied.remove(&id).is_some(),
                    "{what}: {} of a row Flink never saw: {id}",
                    row.kind
                );
            }
            other => panic!("{what}: unexpected row kind {other}"),
        }
    }
    applied
}

/// The changelog formats of Flink's `flink-json`, with their default options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinkFormat {
    /// `debezium-json`; `schema_include` sets `debezium-json.schema-include`.
    Debezium { schema_include: bool },
    /// `canal-json`.
    Canal,
    /// `maxwell-json`.
    Maxwell,
}

impl FlinkFormat {
    fn argument(self) -> &'static str {
        match self {
            Self::Debezium {
                schema_include: false,
            } => "debezium-json",
            Self::Debezium {
                schema_include: true,
            } => "debezium-json-schema",
            Self::Canal => "canal-json",
            Self::Maxwell => "maxwell-json",
        }
    }
}

/// Reads message values (`None`: a tombstone) with Flink's `debezium-json` format, as
/// a Flink Kafka table source of `row_type` (`ROW<id INT NOT NULL, name STRING>`)
/// would with `debezium-json.schema-include` set to `schema_include`. A message
/// Flink refuses fails the call with Flink's error.
pub fn flink_debezium_read(
    row_type: &str,
    schema_include: bool,
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<FlinkRow>, HarnessError> {
    flink_read(FlinkFormat::Debezium { schema_include }, row_type, messages)
}

/// Reads message values (`None`: a tombstone) with one of Flink's changelog formats,
/// as a Flink Kafka table source of `row_type` (`ROW<id INT NOT NULL, name STRING>`)
/// would. A message Flink refuses fails the call with Flink's error.
pub fn flink_read(
    format: FlinkFormat,
    row_type: &str,
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<FlinkRow>, HarnessError> {
    read_messages(
        "FlinkChangelogReader",
        512,
        &[format.argument(), row_type],
        messages,
    )
}

/// Reads `canal-json` message values as [`flink_read`] does, keeping only the
/// messages whose `database` and `table` match the regular expressions (Flink's
/// `canal-json.database.include` and `canal-json.table.include`).
pub fn flink_read_canal_of(
    database: &str,
    table: &str,
    row_type: &str,
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<FlinkRow>, HarnessError> {
    read_messages(
        "FlinkChangelogReader",
        512,
        &[FlinkFormat::Canal.argument(), row_type, database, table],
        messages,
    )
}

/// A key value as these readers order their tables: an integer by its value.
fn ordered(text: &str) -> String {
    match text.parse::<i64>() {
        Ok(number) => format!("{number:+021}"),
        Err(_) => text.to_owned(),
    }
}

/// Applies `shareplex-json` message values as a replicating consumer written from
/// DTS's published field list does (no public SharePlex JSON client exists to run
/// instead): `INSERT` puts `data` under its key (`key_columns`); `UPDATE BEFORE`
/// takes the row under `data`'s key out and `UPDATE AFTER` puts it back with
/// `data`'s columns laid over it (a column left out keeps its value); `DELETE`
/// removes the row under `data`'s key; `TRUNCATE` empties the table. Returns the
/// rows ordered by key (numbers by value); a message that is not SharePlex JSON, or
/// an operation on a row never inserted, is an error.
pub fn shareplex_table(
    messages: &[Option<Vec<u8>>],
    key_columns: &[&str],
) -> Result<Vec<serde_json::Map<String, Json>>, String> {
    use std::collections::BTreeMap;
    let key = |data: &serde_json::Map<String, Json>| -> Result<Vec<String>, String> {
        key_columns
            .iter()
            .map(|column| match data.get(*column) {
                Some(Json::String(text)) => Ok(ordered(text)),
                other => Err(format!("key column {column} is {other:?} in {data:?}")),
            })
            .collect()
    };
    let mut table: BTreeMap<Vec<String>, serde_json::Map<String, Json>> = BTreeMap::new();
    let mut updating: Option<serde_json::Map<String, Json>> = None;
    for (number, message) in messages.iter().enumerate() {
        let Some(bytes) = message else { continue };
        let value: Json =
            serde_json::from_slice(bytes).map_err(|e| format!("message {number}: {e}"))?;
        let op = value["meta"]["op"]
            .as_str()
            .ok_or_else(|| format!("message {number}: no meta.op: {value}"))?;
        let data = value["data"]
            .as_object()
            .ok_or_else(|| format!("message {number}: no data object: {value}"))?;
        match op {
            "INSERT" => {
                table.insert(key(data)?, data.clone());
            }
            "UPDATE BEFORE" => {
                let old = table.remove(&key(data)?).ok_or_else(|| {
                    format!("message {number}: UPDATE BEFORE of a row never inserted: {value}")
                })?;
                updating = Some(old);
            }
            "UPDATE AFTER" => {
                let mut row = updating.take().ok_or_else(|| {
                    format!("message {number}: UPDATE AFTER without UPDATE BEFORE")
                })?;
                row.extend(data.clone());
                table.insert(key(&row)?, row);
            }
            "DELETE" => {
                table.remove(&key(data)?).ok_or_else(|| {
                    format!("message {number}: DELETE of a row never inserted: {value}")
                })?;
            }
            "TRUNCATE" => table.clear(),
            other => return Err(format!("message {number}: unknown op {other}")),
        }
    }
    Ok(table.into_values().collect())
}

/// Applies `oms-json` (OceanBase OMS's Default JSON) message values as a consumer
/// written from OMS's published field list does (as the Go consumer of
/// `wentaojin/dbms` reads them): the key's names from `record_primary_key`, its values
/// from `record_primary_value` (split at `\u0001`); `INSERT` puts `postStruct`, an
/// `UPDATE` takes the row under `prevStruct`'s key out and puts it back under the
/// new key with `postStruct` laid over it (a column left out keeps its value),
/// `DELETE` removes the row, a `DDL` whose `ddl` is a TRUNCATE empties the table.
/// Returns `(db + "." + table_name, row)` ordered by key (numbers by value).
pub fn oms_default_table(messages: &[Option<Vec<u8>>]) -> Result<Vec<NamedRow>, String> {
    use std::collections::BTreeMap;
    let mut table: BTreeMap<Vec<String>, serde_json::Map<String, Json>> = BTreeMap::new();
    let mut name = String::new();
    for (number, message) in messages.iter().enumerate() {
        let Some(bytes) = message else { continue };
        let value: Json =
            serde_json::from_slice(bytes).map_err(|e| format!("message {number}: {e}"))?;
        let fail = |what: &str| format!("message {number}: {what}: {value}");
        let meta = value["allMetaData"]
            .as_object()
            .ok_or_else(|| fail("no allMetaData"))?;
        let text = |field: &str| {
            meta.get(field)
                .and_then(Json::as_str)
                .ok_or_else(|| fail(field))
        };
        name = format!("{}.{}", text("db")?, text("table_name")?);
        let record_type = value["recordType"]
            .as_str()
            .ok_or_else(|| fail("no recordType"))?;
        if record_type == "DDL" {
            if value["postStruct"]["ddl"]
                .as_str()
                .is_some_and(|ddl| ddl.starts_with("TRUNCATE"))
            {
                table.clear();
            }
            continue;
        }
        let names: Vec<&str> = text("record_primary_key")?.split('\u{1}').collect();
        let key: Vec<String> = text("record_primary_value")?
            .split('\u{1}')
            .map(ordered)
            .collect();
        if names.len() != key.len() {
            return Err(fail(
                "record_primary_key and record_primary_value differ in length",
            ));
        }
        let old_key = |prev: &serde_json::Map<String, Json>| -> Result<Vec<String>, String> {
            names
                .iter()
                .map(|n| {
                    prev.get(*n)
                        .and_then(Json::as_str)
                        .map(ordered)
                        .ok_or_else(|| fail("prevStruct without the key"))
                })
                .collect()
        };
        match record_type {
            "INSERT" => {
                let post = value["postStruct"]
                    .as_object()
                    .ok_or_else(|| fail("INSERT without postStruct"))?;
                table.insert(key, post.clone());
            }
            "UPDATE" => {
                let prev = value["prevStruct"]
                    .as_object()
                    .ok_or_else(|| fail("UPDATE without prevStruct"))?;
                let post = value["postStruct"]
                    .as_object()
                    .ok_or_else(|| fail("UPDATE without postStruct"))?;
                let mut row = table
                    .remove(&old_key(prev)?)
                    .ok_or_else(|| fail("UPDATE of a row never inserted"))?;
                row.extend(post.clone());
                table.insert(key, row);
            }
            "DELETE" => {
                table
                    .remove(&key)
                    .ok_or_else(|| fail("DELETE of a row never inserted"))?;
            }
            other => return Err(fail(&format!("unknown recordType {other}"))),
        }
    }
    Ok(table.into_values().map(|row| (name.clone(), row)).collect())
}

/// A row as a consumer applied it, with the table its messages named (DTS's
/// `objectName`, OMS's `db.table_name`).
pub type NamedRow = (String, serde_json::Map<String, Json>);

/// Reads `dts-avro` message values with DTS's subscribe SDK (`AvroDeserializer`,
/// `AvroRecordParser`) and applies the records as a replicating consumer does;
/// returns the table it ends with, one object per row of each value as the SDK prints
/// it, ordered by primary key, with the `database.schema.table` the records named. A
/// record the SDK cannot read fails the call with the reason.
pub fn dts_record_table(messages: &[Option<Vec<u8>>]) -> Result<Vec<NamedRow>, HarnessError> {
    #[derive(serde::Deserialize)]
    struct Line {
        table: String,
        row: serde_json::Map<String, Json>,
    }
    let lines: Vec<Line> = read_messages("DtsRecordReader", 256, &[], messages)?;
    Ok(lines
        .into_iter()
        .map(|line| (line.table, line.row))
        .collect())
}

/// Applies `canal-json` message values (`None`: a tombstone) with Canal's own
/// `FlatMessage` class, as a replicating Canal consumer does, and returns the table
/// it ends with: one object of text values per row, ordered by primary key. A message
/// Canal's client cannot parse or apply fails the call with the reason.
pub fn canal_flat_message_table(
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<serde_json::Map<String, Json>>, HarnessError> {
    read_messages("CanalFlatMessageReader", 256, &[], messages)
}

/// What Apache Paimon's CDC parser and sink make of `canal-json` or `maxwell-json`
/// messages ([`paimon_table`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaimonTable {
    /// Each column's Paimon type, chosen by the parser: from `mysqlType` for Canal
    /// (`DECIMAL(10, 2)`, `TIMESTAMP(6)`, …), `STRING` for Maxwell, which has no types.
    pub types: BTreeMap<String, String>,
    /// The values Paimon's cast to the column's type refused (where Paimon's sink
    /// would stop the job).
    pub refused: Vec<PaimonRefusal>,
    /// The table, ordered by key, each value as the cast made it (see
    /// `PaimonCdcReader`: text, ISO dates, times and instants, hex bytes).
    pub rows: Vec<serde_json::Map<String, Json>>,
}

/// A value Paimon could not cast to its column's type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PaimonRefusal {
    /// The column.
    pub column: String,
    /// Its Paimon type.
    pub r#type: String,
    /// The text weir wrote.
    pub value: String,
    /// Paimon's exception.
    pub error: String,
}

/// Which of Paimon's CDC parsers reads the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaimonFormat {
    /// `CanalRecordParser`, on `canal-json`.
    Canal,
    /// `MaxwellRecordParser`, on `maxwell-json`.
    Maxwell,
}

/// Reads message values with Apache Paimon's parser for `format` (as Paimon's
/// `kafka_sync_table` action does), casts each value to the type the parser chose
/// as Paimon's CDC sink does, and applies the rows to a primary-key table (the key
/// from `pkNames` or Maxwell's `primary_key_columns`). The JVM runs in a zone east of
/// UTC (Asia/Shanghai), so a timestamp read in the local zone would show. A message
/// the parser refuses fails the call with the reason.
pub fn paimon_table(
    format: PaimonFormat,
    messages: &[Option<Vec<u8>>],
) -> Result<PaimonTable, HarnessError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Line {
        Types(BTreeMap<String, String>),
        Refused(PaimonRefusal),
        Row(serde_json::Map<String, Json>),
    }
    let class = "PaimonCdcReader";
    let mut java = java(
        &format!("dev.weir.judges.{class}"),
        256,
        JvmTuning::StartFast,
        Jars::JudgesAndPaimon,
    )?;
    java.env("TZ", "Asia/Shanghai");
    let mut table = PaimonTable::default();
    let format = match format {
        PaimonFormat::Canal => "canal-json",
        PaimonFormat::Maxwell => "maxwell-json",
    };
    for line in judge_messages(java, class, &[format], messages)? {
        match line {
            Line::Types(types) => table.types = types,
            Line::Refused(refusal) => table.refused.push(refusal),
            Line::Row(row) => table.rows.push(row),
        }
    }
    Ok(table)
}

/// Runs judge `class` (of `dev.weir.judges`) with `args`, feeding it the message
/// values one per line (base64; an empty line for a tombstone), and parses each line
/// it prints as JSON. A judge that exits unsuccessfully fails the call with its
/// standard error.
fn read_messages<T: serde::de::DeserializeOwned>(
    class: &'static str,
    heap_mb: u32,
    args: &[&str],
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<T>, HarnessError> {
    let java = java(
        &format!("dev.weir.judges.{class}"),
        heap_mb,
        JvmTuning::StartFast,
        Jars::Judges,
    )?;
    judge_messages(java, class, args, messages)
}

/// [`read_messages`] with the `java` command of judge `class` made by the caller.
fn judge_messages<T: serde::de::DeserializeOwned>(
    mut java: Command,
    class: &'static str,
    args: &[&str],
    messages: &[Option<Vec<u8>>],
) -> Result<Vec<T>, HarnessError> {
    use base64::Engine as _;
    let mut child = java
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io("start a java judge", e))?;
    let mut input = String::new();
    for message in messages {
        if let Some(bytes) = message {
            input.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("run a java judge", e))?;
    let _ = writer.join();
    if !output.status.success() {
        return Err(HarnessError::Command {
            what: class,
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).map_err(|e| HarnessError::Command {
                what: class,
                detail: format!("{e}: {line}"),
            })
        })
        .collect()
}

/// Kafka Connect in standalone mode running one connector (Debezium's JDBC sink,
/// say), its jars on the classpath. Stopped (killed) when dropped.
#[derive(Debug)]
pub struct ConnectStandalone {
    judge: JudgeProcess,
}

impl ConnectStandalone {
    /// Starts a worker with `worker` properties (bootstrap servers, converters; an
    /// offsets file and a REST listener on a free port are filled in) running one
    /// connector with `connector` properties.
    pub fn start(
        worker: &[(&str, String)],
        connector: &[(&str, String)],
    ) -> Result<Self, HarnessError> {
        Self::start_tuned(worker, connector, (768, JvmTuning::StartFast))
    }

    /// [`ConnectStandalone::start`] with a heap of `heap_mb` and `tuning`.
    pub fn start_tuned(
        worker: &[(&str, String)],
        connector: &[(&str, String)],
        jvm: (u32, JvmTuning),
    ) -> Result<Self, HarnessError> {
        let dir = JudgeDir::new()?;
        let mut worker: Vec<(&str, String)> = worker.to_vec();
        worker.push((
            "offset.storage.file.filename",
            dir.path("offsets").display().to_string(),
        ));
        worker.push((
            "listeners",
            format!("http://127.0.0.1:{}", crate::free_loopback_port()?),
        ));
        worker.push(("plugin.discovery", "only_scan".to_owned()));
        let worker = dir.write("worker.properties", &worker)?;
        let connector = dir.write("connector.properties", connector)?;
        let judge = dir.spawn(
            "org.apache.kafka.connect.cli.ConnectStandalone",
            jvm,
            &[worker, connector],
        )?;
        Ok(Self { judge })
    }

    /// Fails when the worker exited.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.judge.exited() {
            Some(status) => Err(HarnessError::Command {
                what: "Kafka Connect",
                detail: format!("exited ({status}):\n{}", self.log()),
            }),
            None => Ok(()),
        }
    }

    /// What the worker logged, for failure messages.
    pub fn log(&self) -> String {
        self.judge.log()
    }

    /// The worker's process id (the benchmark reads its peak memory).
    pub fn pid(&self) -> u32 {
        self.judge.pid()
    }
}

fn write_properties(path: &Path, properties: &[(&str, String)]) -> Result<(), HarnessError> {
    let mut text = String::new();
    for (name, value) in properties {
        text.push_str(&format!("{name}={}\n", value.replace('\\', "\\\\")));
    }
    fs::write(path, text).map_err(|e| HarnessError::io("write a properties file", e))
}
