//! What the adapter asks of Athena, behind a small trait: the seam where tests inject failures.

use std::time::Duration;

use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};

/// The state of a query, as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed, with Athena's reason.
    Failed(String),
    /// Cancelled, with Athena's reason.
    Cancelled(String),
}

/// The calls the adapter makes. Errors are plain messages: the adapter adds the query id and
/// turns them into the port's error.
pub trait QueryApi: Send + Sync {
    /// Starts `sql`; returns the query execution id.
    fn start(&self, sql: &str) -> Result<String, String>;
    /// The query's state now.
    fn state(&self, id: &str) -> Result<QueryState, String>;
    /// Asks Athena to stop the query.
    fn cancel(&self, id: &str) -> Result<(), String>;
    /// The result rows (without the header row), as text.
    fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, String>;
}

/// Where and how queries run.
#[derive(Debug, Clone)]
pub struct AthenaOptions {
    /// Workgroup.
    pub workgroup: String,
    /// Database of the temporary table (and of unqualified `--athena-table` names).
    pub database: String,
    /// Query result location (`s3://...`); `None` uses the workgroup's.
    pub results: Option<String>,
    /// Endpoint URL; `None` reads `AWS_ENDPOINT_URL_ATHENA` / `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes the AWS chain's.
    pub region: Option<String>,
    /// First poll interval; later polls back off to 5 s.
    pub poll_interval: Duration,
    /// A query running longer is cancelled and the run fails.
    pub timeout: Duration,
}

impl Default for AthenaOptions {
    fn default() -> Self {
        AthenaOptions {
            workgroup: "primary".into(),
            database: "default".into(),
            results: None,
            endpoint: None,
            region: None,
            poll_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(3600),
        }
    }
}

/// [`QueryApi`] through the AWS SDK, with the standard credential chain.
pub struct SdkQueryApi {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_athena::Client,
    options: AthenaOptions,
}

fn message(e: impl std::error::Error) -> String {
    // The SDK's Display is terse ("service error"); the source chain has Athena's words.
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl SdkQueryApi {
    /// Loads the AWS configuration and builds the client.
    pub fn new(options: AthenaOptions) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Athena client runtime: {e}"))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &options.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let endpoint = options.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL_ATHENA").ok());
        if let Some(endpoint) = endpoint.filter(|e| !e.is_empty()) {
            loader = loader.endpoint_url(endpoint);
        }
        let config = runtime.block_on(loader.load());
        Ok(SdkQueryApi { client: aws_sdk_athena::Client::new(&config), runtime, options })
    }
}

impl QueryApi for SdkQueryApi {
    fn start(&self, sql: &str) -> Result<String, String> {
        let mut request = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.options.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.options.database).build());
        if let Some(results) = &self.options.results {
            request = request.result_configuration(ResultConfiguration::builder().output_location(results).build());
        }
        let response = self.runtime.block_on(request.send()).map_err(message)?;
        response.query_execution_id().map(str::to_string).ok_or_else(|| "Athena returned no query id".to_string())
    }

    fn state(&self, id: &str) -> Result<QueryState, String> {
        let response =
            self.runtime.block_on(self.client.get_query_execution().query_execution_id(id).send()).map_err(message)?;
        let status = response.query_execution().and_then(|q| q.status());
        let reason = status.and_then(|s| s.state_change_reason()).unwrap_or("no reason given").to_string();
        Ok(match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Queued) | None => QueryState::Queued,
            Some(QueryExecutionState::Running) => QueryState::Running,
            Some(QueryExecutionState::Succeeded) => QueryState::Succeeded,
            Some(QueryExecutionState::Cancelled) => QueryState::Cancelled(reason),
            Some(_) => QueryState::Failed(reason),
        })
    }

    fn cancel(&self, id: &str) -> Result<(), String> {
        self.runtime.block_on(self.client.stop_query_execution().query_execution_id(id).send()).map_err(message)?;
        Ok(())
    }

    fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let response =
            self.runtime.block_on(self.client.get_query_results().query_execution_id(id).send()).map_err(message)?;
        let rows = response.result_set().map(|r| r.rows()).unwrap_or_default();
        Ok(rows
            .iter()
            .skip(1) // the header row
            .map(|row| row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect())
            .collect())
    }
}
