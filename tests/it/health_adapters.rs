//! The health adapters against scripted responses (`aws-smithy-mocks`): what moto cannot show.
//! CloudWatch batching and paging, throttling, and Route 53 health checks that are unhealthy
//! (moto always reports success), through the real SDK deserialisers and the adapters'
//! classification, and on into the probes.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, StateValue};
use aws_sdk_route53::operation::get_health_check_status::GetHealthCheckStatusOutput;
use aws_sdk_route53::types::{HealthCheckObservation, StatusReport};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use failover::clock::SystemClock;
use failover::cloud::aws::cloudwatch::AwsAlarms;
use failover::cloud::aws::health_checks::AwsHealthChecks;
use failover::cloud::ErrorKind;
use failover::health::config::{Check, Probe, Target};
use failover::health::eval::Outcome;
use failover::health::ports::{AlarmValue, Alarms, HealthChecks};
use failover::health::probes::{run_round, HealthPorts, LiveProber};
use failover::types::Zone;
use std::sync::Arc;
use std::time::Duration;

macro_rules! mocked {
    ($krate:ident, $mode:expr, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode($mode);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let conf = $krate::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider($krate::config::Credentials::new(
                "test", "test", None, None, "mock",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build();
        $krate::Client::from_conf(conf)
    }};
}

fn alarms(mode: RuleMode, rules: &[&Rule]) -> AwsAlarms {
    AwsAlarms::from_client(mocked!(aws_sdk_cloudwatch, mode, rules.iter().copied()))
}

fn checks(mode: RuleMode, rules: &[&Rule]) -> AwsHealthChecks {
    AwsHealthChecks::from_client(mocked!(aws_sdk_route53, mode, rules.iter().copied()))
}

fn metric(name: &str, state: StateValue) -> MetricAlarm {
    MetricAlarm::builder()
        .alarm_name(name)
        .state_value(state)
        .state_reason("Threshold Crossed")
        .build()
}

#[tokio::test]
async fn alarm_names_are_batched_by_one_hundred_and_filtered() {
    let echo = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_compute_output(|r| {
        let names = r.alarm_names().to_vec();
        assert!(names.len() <= 100, "{} names in one call", names.len());
        assert_eq!(
            r.alarm_types().len(),
            2,
            "metric and composite alarms are both asked for"
        );
        let mut out = DescribeAlarmsOutput::builder();
        for n in names {
            out = out.metric_alarms(metric(
                &n,
                if n.ends_with('7') {
                    StateValue::Alarm
                } else {
                    StateValue::Ok
                },
            ));
        }
        // An alarm nobody asked for (a peer ignoring the names) is dropped.
        out.metric_alarms(metric("someone-else", StateValue::Alarm))
            .build()
    });
    let cw = alarms(RuleMode::MatchAny, &[&echo]);
    assert!(cw.alarm_states(&[]).await.unwrap().is_empty());
    assert_eq!(echo.num_calls(), 0, "no names, no call");
    let mut names: Vec<String> = (0..150).map(|i| format!("5xx-{i}")).collect();
    names.push("5xx-7".into()); // asked twice, reported once
    let got = cw.alarm_states(&names).await.unwrap();
    assert_eq!(echo.num_calls(), 2);
    assert_eq!(got.len(), 150);
    assert_eq!(
        got.iter().filter(|a| a.value == AlarmValue::Alarm).count(),
        15
    );
    assert!(got.iter().all(|a| a.name != "someone-else"));
}

#[tokio::test]
async fn pages_are_followed_and_composite_alarms_count() {
    let page1 = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(metric("a", StateValue::Ok))
                .next_token("p2")
                .build()
        });
    let page2 = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(|| {
            DescribeAlarmsOutput::builder()
                .composite_alarms(
                    CompositeAlarm::builder()
                        .alarm_name("zone-a-composite")
                        .state_value(StateValue::Alarm)
                        .state_reason("children in ALARM")
                        .build(),
                )
                .build()
        });
    let cw = alarms(RuleMode::Sequential, &[&page1, &page2]);
    let got = cw
        .alarm_states(&["a".into(), "zone-a-composite".into()])
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|a| (a.name.as_str(), a.value.clone()))
            .collect::<Vec<_>>(),
        [
            ("a", AlarmValue::Ok),
            ("zone-a-composite", AlarmValue::Alarm)
        ]
    );
    assert_eq!(got[1].reason, "children in ALARM");

    let stuck = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .then_output(|| DescribeAlarmsOutput::builder().next_token("again").build());
    let err = alarms(RuleMode::MatchAny, &[&stuck])
        .alarm_states(&["a".into()])
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.operation.as_str()),
        (ErrorKind::Other, "DescribeAlarms")
    );
    assert_eq!(stuck.num_calls(), 2);
}

#[tokio::test]
async fn a_throttled_alarm_read_makes_the_probes_unknown_not_failing() {
    let throttled = mock!(aws_sdk_cloudwatch::Client::describe_alarms).sequence().http_status(400, Some(
        r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"#.to_string(),
    )).build();
    let cw = alarms(RuleMode::Sequential, &[&throttled]);
    let err = cw.alarm_states(&["5xx-a".into()]).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_deref(), err.resource.as_str()),
        (ErrorKind::Throttled, Some("Throttling"), "5xx-a")
    );

    let throttled = mock!(aws_sdk_cloudwatch::Client::describe_alarms).sequence().http_status(400, Some(
        r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"#.to_string(),
    )).build();
    let ports = HealthPorts::new(Arc::new(SystemClock), Duration::from_secs(1))
        .unwrap()
        .with_alarms(Arc::new(alarms(RuleMode::Sequential, &[&throttled])));
    let probes: Vec<Probe> = ["5xx-a", "5xx-b"]
        .iter()
        .map(|n| Probe {
            name: n.to_string(),
            target: Target::Zone(Zone::from("us-west-2a")),
            timeout: Duration::from_secs(1),
            check: Check::CloudwatchAlarm {
                alarm: n.to_string(),
            },
        })
        .collect();
    let round = run_round(&LiveProber::new(ports), &probes, 2, &SystemClock).await;
    assert_eq!(
        throttled.num_calls(),
        1,
        "one call for both alarms, and API probes are not retried within a round"
    );
    for r in &round.results {
        assert_eq!(r.outcome, Outcome::Unknown);
        assert!(r.detail.starts_with("cannot read the alarm: DescribeAlarms on 5xx-a, 5xx-b failed (Throttled, Throttling)"), "{}", r.detail);
    }
}

fn observations(success: usize, failure: usize) -> GetHealthCheckStatusOutput {
    let mut out = GetHealthCheckStatusOutput::builder().set_health_check_observations(Some(vec![]));
    for i in 0..success + failure {
        let status = if i < success {
            "Success: HTTP Status Code 200, OK"
        } else {
            "Failure: Connection timed out. The endpoint or the internet connection is down"
        };
        out = out.health_check_observations(
            HealthCheckObservation::builder()
                .ip_address(format!("15.177.0.{i}"))
                .status_report(StatusReport::builder().status(status).build())
                .build(),
        );
    }
    out.build().unwrap()
}

#[tokio::test]
async fn route53_health_checks_follow_the_eighteen_percent_rule() {
    let three = mock!(aws_sdk_route53::Client::get_health_check_status)
        .match_requests(|r| r.health_check_id() == Some("hc-3of16"))
        .then_output(|| observations(3, 13));
    let two = mock!(aws_sdk_route53::Client::get_health_check_status)
        .match_requests(|r| r.health_check_id() == Some("hc-2of16"))
        .then_output(|| observations(2, 14));
    let none = mock!(aws_sdk_route53::Client::get_health_check_status)
        .match_requests(|r| r.health_check_id() == Some("hc-new"))
        .then_output(|| observations(0, 0));
    let hc = checks(RuleMode::MatchAny, &[&three, &two, &none]);
    let s = hc.health_check_status("hc-3of16").await.unwrap();
    assert_eq!(
        (s.checkers, s.reporting_success, s.is_healthy()),
        (16, 3, Some(true))
    );
    let s = hc.health_check_status("hc-2of16").await.unwrap();
    assert_eq!(
        (s.checkers, s.reporting_success, s.is_healthy()),
        (16, 2, Some(false))
    );

    // Through the probe: unhealthy fails with the checkers' own words; no report is unknown.
    let ports = HealthPorts::new(Arc::new(SystemClock), Duration::from_secs(1))
        .unwrap()
        .with_health_checks(Arc::new(hc));
    let probes: Vec<Probe> = ["hc-3of16", "hc-2of16", "hc-new"]
        .iter()
        .map(|id| Probe {
            name: id.to_string(),
            target: Target::Zone(Zone::from("us-west-2a")),
            timeout: Duration::from_secs(1),
            check: Check::Route53HealthCheck {
                health_check_id: id.to_string(),
            },
        })
        .collect();
    let round = run_round(&LiveProber::new(ports), &probes, 1, &SystemClock).await;
    let got: Vec<(Outcome, &str)> = round
        .results
        .iter()
        .map(|r| (r.outcome, r.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Outcome::Pass, "3 of 16 checkers report success"),
            (Outcome::Fail, "2 of 16 checkers report success (18% needed): Failure: Connection timed out. The endpoint or the internet connection is down"),
            (Outcome::Unknown, "no Route 53 checker has reported yet"),
        ]
    );
}
