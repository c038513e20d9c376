use super::*;

const RULES: &str = r#"
[defaults]
severity = "S3"
severity_map = { critical = "S2", warning = "S3", info = "S4" }

[facts_from]
affected_subjects = ["labels.affected_subjects", "annotations.affected_subjects"]
data_types = ["labels.data_types"]

[[rules]]
name = "pi-by-facts"
category = "pi_leak"
facts = { min_affected_subjects = 1, data_types_any = ["phone", "id_number"] }

[[rules]]
name = "pi-leak-text"
category = "pi_leak"
text = '泄露|泄漏|外泄|拖库|脱库|撞库|data leak|exfiltrat|\bPII\b'

[[rules]]
name = "noise"
category = "other"
incident = false
labels = { alertname = "^Watchdog$" }

[[rules]]
name = "malware"
category = "malware"
text = "ransomware|勒索"
severity = "S2"

[[rules]]
name = "by-label"
category = "network_attack"
labels = { alertname = "DDoS" }
"#;

fn rules() -> Rules {
    Rules::compile(&toml::from_str(RULES).unwrap()).unwrap()
}

fn classify(text: &str, labels: &[(&str, &str)], facts: &Facts) -> Option<Classification> {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rules().classify(&Subject {
        source: "test",
        text,
        labels: &labels,
        annotations: &BTreeMap::new(),
        facts,
    })
}

#[test]
fn chinese_and_english_leaks_are_pi_and_s1() {
    for t in [
        "用户数据库疑似被拖库",
        "订单数据外泄",
        "Possible data leak from bucket",
        "PII exfiltration",
    ] {
        let c = classify(t, &[("severity", "info")], &Facts::default()).unwrap();
        assert_eq!(c.category, Category::PiLeak, "{t}");
        assert_eq!(c.severity, Severity::S1, "{t}");
    }
}

#[test]
fn word_boundaries_are_ascii() {
    assert_eq!(ascii_word_boundaries(r"\bPII\b"), r"(?-u:\b)PII(?-u:\b)");
    assert_eq!(ascii_word_boundaries(r"a\\b\d\B"), r"a\\b\d(?-u:\B)");
    assert!(classify("用户PII泄", &[], &Facts::default()).is_some());
    assert!(classify("发现PII", &[], &Facts::default()).is_some());
}

#[test]
fn case_insensitive_and_word_bounded() {
    assert!(classify("DATA LEAK", &[], &Facts::default()).is_some());
    assert!(classify("the PIIR exporter", &[], &Facts::default()).is_none());
}

#[test]
fn severity_from_rule_then_label_then_default() {
    let c = classify(
        "ransomware on fs01",
        &[("severity", "info")],
        &Facts::default(),
    )
    .unwrap();
    assert_eq!(c.severity, Severity::S2);
    let c = classify(
        "",
        &[("alertname", "DDoS"), ("severity", "critical")],
        &Facts::default(),
    )
    .unwrap();
    assert_eq!(c.severity, Severity::S2);
    let c = classify("", &[("alertname", "DDoS")], &Facts::default()).unwrap();
    assert_eq!(c.severity, Severity::S3);
}

#[test]
fn facts_can_make_an_incident_pi() {
    let facts = Facts {
        affected_subjects: Some(1200),
        data_types: vec!["phone".parse().unwrap()],
        ..Facts::default()
    };
    let c = classify("intrusion on web01", &[], &facts).unwrap();
    assert_eq!(
        (c.category, c.rule.as_str()),
        (Category::PiLeak, "pi-by-facts")
    );
}

#[test]
fn noise_rule_opens_nothing_and_unmatched_is_none() {
    let c = classify("", &[("alertname", "Watchdog")], &Facts::default()).unwrap();
    assert!(!c.opens_incident);
    assert!(classify("disk almost full", &[], &Facts::default()).is_none());
}

#[test]
fn bad_rules_are_all_reported_with_keys() {
    let file: RulesFile = toml::from_str(
        r#"
[[rules]]
name = "a"
category = "pi_leak"
severity = "S3"
text = "("

[[rules]]
name = "a"
category = "leak"
"#,
    )
    .unwrap();
    let errs = Rules::compile(&file).unwrap_err();
    let all = errs.join("\n");
    assert!(
        all.contains("rules[0] (a).severity: `pi_leak` incidents are always S1"),
        "{all}"
    );
    assert!(
        all.contains("rules[0] (a).text: invalid regular expression"),
        "{all}"
    );
    assert!(
        all.contains("rules[1] (a).name: another rule already uses this name"),
        "{all}"
    );
    assert!(
        all.contains("rules[1] (a).category: `leak` is not a known category"),
        "{all}"
    );
    assert!(
        all.contains("rules[1] (a): a rule needs at least one condition"),
        "{all}"
    );
}

/// The shipped rules file, as users get it.
fn shipped() -> Rules {
    let file: RulesFile =
        toml::from_str(include_str!("../../../config/classification.toml")).unwrap();
    Rules::compile(&file).unwrap_or_else(|e| panic!("{}", e.join("\n")))
}

fn shipped_classify(rules: &Rules, text: &str, labels: &[(&str, &str)]) -> Option<Classification> {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rules
        .classify(&Subject {
            source: "alertmanager",
            text,
            labels: &labels,
            annotations: &BTreeMap::new(),
            facts: &Facts::default(),
        })
        .or_else(|| rules.triage(&labels))
}

/// Alert texts as DLP, SIEM and database-audit products word them, in Chinese and English:
/// each moves personal data in bulk or out of the house, and none says "leak".
#[test]
fn dlp_siem_and_database_audit_wording_is_a_pi_leak() {
    let rules = shipped();
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77",
            &[("severity", "critical"), ("policy", "PII-bulk-export")],
        ),
        (
            "DLP: bulk export of table crm.customers (phone, id_card_no) to unknown host 203.0.113.77",
            &[("severity", "critical")],
        ),
        (
            "Forcepoint DLP incident #88213: 12,483 records matching 'China ID Card Number' sent via HTTPS to pastebin.com",
            &[],
        ),
        (
            "Netskope: user j.doe uploaded customer_list.xlsx containing 45,000 e-mail addresses to a personal Google Drive",
            &[],
        ),
        (
            "Splunk ES notable: large volume download of user table by service account svc-backup from 10.2.3.4",
            &[("severity", "high")],
        ),
        (
            "QRadar offense 4711: excessive database reads of customer records followed by outbound transfer to rare external IP",
            &[],
        ),
        (
            "DB audit: mass SELECT on users table (2.1M rows, columns email, phone) by non-application account",
            &[],
        ),
        (
            "MySQL audit: mysqldump of database crm (customer table) executed from unknown host 198.51.100.23",
            &[],
        ),
        (
            "敏感数据外发告警：用户 zhangsan 通过邮件外发含身份证号的文件 客户名单.xlsx（3,200 条）",
            &[],
        ),
        (
            "数据防泄漏(DLP)：检测到手机号批量导出 12 万条至外部 FTP 服务器",
            &[],
        ),
        (
            "数据库审计：账号 report_ro 执行 SELECT * FROM member_info，返回 2,300,000 行，涉及字段 mobile、id_no",
            &[],
        ),
        (
            "异常大量下载：账号 svc-report 1 小时内下载用户表 users 共 850 万行",
            &[],
        ),
        ("终端DLP：检测到客户资料批量拷贝至U盘", &[]),
        ("UEBA：离职前员工批量下载客户信息 1.2 万条", &[]),
        (
            "alert",
            &[("policy", "个人信息批量外发"), ("severity", "warning")],
        ),
    ];
    for (text, labels) in cases {
        let c = shipped_classify(&rules, text, labels)
            .unwrap_or_else(|| panic!("no rule matched: {text} {labels:?}"));
        assert_eq!(
            (c.category, c.severity),
            (Category::PiLeak, Severity::S1),
            "{text} {labels:?} (rule {})",
            c.rule
        );
    }
}

/// Everyday operations wording that mentions exports, backups or users without moving
/// personal data out must not page the whole joint team.
#[test]
fn everyday_exports_and_backups_are_not_pi() {
    let rules = shipped();
    for text in [
        "Export job for monthly sales report completed",
        "Backup of database crm to s3://corp-backup finished successfully",
        "Scheduled export of aggregated metrics to the data warehouse failed",
        "数据库备份任务完成",
        "High CPU on db-3 (users: 1,200 connections)",
        "用户登录失败次数过多",
        "Disk almost full on /var/lib/mysql",
        "Large download of build artifacts from artifactory by CI runner",
        "Bulk export of the product catalog to the partner SFTP completed",
        "批量导出商品目录任务失败",
    ] {
        if let Some(c) = shipped_classify(&rules, text, &[("severity", "warning")]) {
            assert!(
                !c.category.is_personal_information(),
                "{text}: {:?} by {}",
                c.category,
                c.rule
            );
        }
    }
}

#[test]
fn unmatched_critical_and_high_open_triage_lower_are_recorded() {
    let rules = shipped();
    let text = "Replication lag on db-7 exceeds 30 minutes";
    for level in ["critical", "high", "CRITICAL"] {
        let c = shipped_classify(&rules, text, &[("severity", level)]).unwrap();
        assert!(c.is_triage(), "{level}");
        assert_eq!(
            (c.category, c.severity),
            (Category::Unclassified, Severity::S2)
        );
        assert!(c.opens_incident);
    }
    for level in ["warning", "info", "low", "bogus"] {
        assert!(
            shipped_classify(&rules, text, &[("severity", level)]).is_none(),
            "{level}"
        );
    }
    assert!(shipped_classify(&rules, text, &[]).is_none());
    assert_eq!(rules.default_correlation(), &Correlation::Group);
}

#[test]
fn correlation_and_unmatched_policy_are_checked() {
    let file: RulesFile = toml::from_str(
        r#"
[defaults]
correlate = "groups"

[unmatched]
policy = "page"
min_severity = "S9"

[[rules]]
name = "unmatched"
category = "other"
text = "x"

[[rules]]
name = "b"
category = "other"
text = "y"
correlate = "labels"

[[rules]]
name = "c"
category = "other"
text = "z"
correlate = "fingerprint"
group_by = ["alertname"]
"#,
    )
    .unwrap();
    let all = Rules::compile(&file).unwrap_err().join("\n");
    for want in [
        "defaults.correlate: `groups` is not a correlation",
        "unmatched.policy: `page` is not a policy",
        "unmatched.min_severity: `S9` is not a severity",
        "rules[0] (unmatched).name: `unmatched` names the triage",
        "rules[1] (b).group_by: correlate = \"labels\" needs the labels",
        "rules[2] (c).group_by: group_by names labels for correlate = \"labels\", not \"fingerprint\"",
    ] {
        assert!(all.contains(want), "missing `{want}` in:\n{all}");
    }
    let file: RulesFile = toml::from_str(
        r#"
[unmatched]
policy = "record"

[[rules]]
name = "by-service"
category = "other"
text = "y"
group_by = ["service"]
"#,
    )
    .unwrap();
    let rules = Rules::compile(&file).unwrap();
    assert_eq!(rules.triage_from(), None);
    let labels: BTreeMap<String, String> = [("severity".to_string(), "critical".to_string())]
        .into_iter()
        .collect();
    assert!(rules.triage(&labels).is_none(), "record: nothing opens");
    let c = classify_with(&rules, "y");
    assert_eq!(c.correlate, Correlation::Labels(vec!["service".into()]));
}

fn classify_with(rules: &Rules, text: &str) -> Classification {
    rules
        .classify(&Subject {
            source: "s",
            text,
            labels: &BTreeMap::new(),
            annotations: &BTreeMap::new(),
            facts: &Facts::default(),
        })
        .unwrap()
}

#[test]
fn facts_are_extracted_leniently() {
    let labels: BTreeMap<String, String> = [
        ("affected_subjects".to_string(), "1,200".to_string()),
        (
            "data_types".to_string(),
            "phone, id_number, shoe_size".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let f = rules().extract_facts(&labels, &BTreeMap::new());
    assert_eq!(f.affected_subjects, Some(1200));
    assert_eq!(f.data_types.len(), 2);
}
