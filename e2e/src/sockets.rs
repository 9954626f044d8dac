//! Which TCP addresses a process group listens on, read from `/proc`, so tests can prove that
//! every server the harness starts binds loopback only.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

/// Listening TCP sockets owned by any process in process group `pgid`.
pub fn listening_addrs(pgid: u32) -> Vec<SocketAddr> {
    let inodes: HashSet<u64> = group_members(pgid)
        .into_iter()
        .flat_map(socket_inodes)
        .collect();
    let mut addrs = Vec::new();
    for (table, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        addrs.extend(
            text.lines()
                .skip(1)
                .filter_map(|line| parse_listener(line, v6, &inodes)),
        );
    }
    addrs
}

fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| process_group(*pid) == Some(pgid))
        .collect()
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command: state ppid pgrp ...
    let rest = stat.rsplit_once(") ")?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// One row of /proc/net/tcp*: `sl local rem st ... inode`; state 0A is LISTEN.
fn parse_listener(line: &str, v6: bool, inodes: &HashSet<u64>) -> Option<SocketAddr> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.get(3) != Some(&"0A") || !inodes.contains(&fields.get(9)?.parse().ok()?) {
        return None;
    }
    let (ip_hex, port_hex) = fields.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    Some(SocketAddr::new(parse_ip(ip_hex, v6)?, port))
}

/// The kernel prints addresses as host-order 32-bit words in hex.
fn parse_ip(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::swap_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    if v6 {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let octets: [u8; 16] = bytes.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        Some(IpAddr::V4(Ipv4Addr::from(*words.first()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_address_format() {
        assert_eq!(
            parse_ip("0100007F", false),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            parse_ip("00000000", false),
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(
            parse_ip("00000000000000000000000001000000", true),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let own_group = process_group(std::process::id()).unwrap();
        assert!(
            listening_addrs(own_group)
                .iter()
                .any(|a| a.port() == port && a.ip().is_loopback())
        );
    }
}
