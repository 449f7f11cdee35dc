//! Helpers shared by the binary's integration tests (each test file is its own
//! crate: `mod common;` brings these in).

/// `Mon, 23 Nov 2026 08:28:47 GMT` -> seconds since the epoch.
pub fn parse_http_date(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    let day: i64 = f[1].parse().unwrap();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == f[2]).unwrap() as i64 + 1;
    let year: i64 = f[3].parse().unwrap();
    let hms: Vec<i64> = f[4].split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// Seconds since the epoch, by this machine's clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
