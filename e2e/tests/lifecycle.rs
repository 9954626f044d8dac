//! The harness starts and stops its real components cleanly: three full cycles in one
//! process, with no process or listening port left behind.

use anyhow::Result;
use pangea_e2e::{
    AwsEmulator, ControlPlane,
    process::{is_alive, port_open},
};

#[tokio::test]
async fn three_start_stop_cycles_leave_nothing_behind() -> Result<()> {
    for cycle in 1..=3 {
        let cp = ControlPlane::start().await?;
        let aws = AwsEmulator::start()?.with_dynamodb()?;
        let (pids, ports): (Vec<u32>, Vec<u16>) = (
            cp.pids().into_iter().chain(aws.pids()).collect(),
            cp.ports().into_iter().chain(aws.ports()).collect(),
        );
        assert!(
            ports.iter().all(|p| port_open(*p)),
            "cycle {cycle}: a port is not listening"
        );
        let dir = cp.dir().to_path_buf();
        eprintln!(
            "cycle {cycle}: apiserver ready in {:?}, {:?} ready in {:?}",
            cp.apiserver_ready_after, aws.kind, aws.ready_after
        );
        aws.stop();
        cp.stop();
        let leftovers: Vec<u32> = pids.into_iter().filter(|p| is_alive(*p)).collect();
        assert!(
            leftovers.is_empty(),
            "cycle {cycle}: processes still alive: {leftovers:?}"
        );
        let open: Vec<u16> = ports.into_iter().filter(|p| port_open(*p)).collect();
        assert!(
            open.is_empty(),
            "cycle {cycle}: ports still listening: {open:?}"
        );
        assert!(
            !dir.exists(),
            "cycle {cycle}: {} not removed",
            dir.display()
        );
    }
    Ok(())
}
