//! Exercises every safe wrapper against real DPDK virtual devices. EAL can be
//! initialised once per process, so one test drives the whole sequence.

use std::io::Write;

use flowgate_sys::{lcore, Eal, LinkStatus, MbufBurst, Mempool, Port, PortSetup};

fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    let mut f = std::fs::File::create(path).unwrap();
    // pcap global header: magic, v2.4, tz 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET
    f.write_all(&0xa1b2c3d4u32.to_le_bytes()).unwrap();
    f.write_all(&2u16.to_le_bytes()).unwrap();
    f.write_all(&4u16.to_le_bytes()).unwrap();
    f.write_all(&[0u8; 8]).unwrap();
    f.write_all(&65535u32.to_le_bytes()).unwrap();
    f.write_all(&1u32.to_le_bytes()).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        f.write_all(&(i as u32).to_le_bytes()).unwrap();
        f.write_all(&0u32.to_le_bytes()).unwrap();
        f.write_all(&(fr.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&(fr.len() as u32).to_le_bytes()).unwrap();
        f.write_all(fr).unwrap();
    }
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12] = 0x88;
    f[13] = 0xb5; // local experimental ethertype
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = n.wrapping_add(i as u8);
    }
    f
}

#[test]
fn wrappers_work_on_virtual_devices() {
    let dir = std::env::temp_dir().join(format!("fg-sys-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let in_pcap = dir.join("in.pcap");
    let out_pcap = dir.join("out.pcap");
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(i, 60 + i as usize * 100)).collect();
    write_pcap(&in_pcap, &frames);

    let prefix = format!("fgsys{}", std::process::id());
    let eal = Eal::init(&[
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--lcores=0@0,1@0",
        "--log-level=lib.eal:error",
        &format!("--file-prefix={prefix}"),
    ])
    .expect("EAL init");
    assert!(Eal::init(&["--no-huge"]).is_err(), "second init must fail");
    let info = eal.info();
    assert!(!info.hugepages);
    assert!(info.version.contains("22.11"), "{}", info.version);
    assert_eq!(lcore::workers(&eal), vec![1]);
    assert_eq!(lcore::current(), info.main_lcore);
    assert!(flowgate_sys::cpu::tsc_hz() > 0);

    // A bogus device is refused with DPDK's error, not a crash.
    let err = eal.probe_port("net_nosuchdriver0").unwrap_err();
    assert!(err.op.contains("net_nosuchdriver0"), "{err}");
    // The message is what DPDK logged about it, captured, not printed.
    println!("probe failure: {err}");
    assert!(err.message.contains("net_nosuchdriver0"), "{err}");

    let pool = Mempool::new(&eal, "fgtest", 4095, 32, 2048 + 128, -1).expect("mempool");
    assert_eq!(pool.in_use_count(), 0);

    // mbuf wrappers.
    {
        let mut m = pool.alloc().expect("alloc");
        assert_eq!(pool.in_use_count(), 1);
        assert_eq!(m.data_len(), 0);
        let head = m.headroom();
        let tail = m.tailroom();
        assert_eq!(head, 128);
        m.append(10).unwrap().copy_from_slice(&[7; 10]);
        assert_eq!(m.data(), &[7; 10]);
        assert_eq!(m.tailroom(), tail - 10);
        m.prepend(4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(&m.data()[..5], &[1, 2, 3, 4, 7]);
        assert_eq!(m.headroom(), head - 4);
        assert_eq!(m.pkt_len(), 14);
        assert!(m.trim(4));
        assert_eq!(m.data_len(), 10);
        assert!(!m.trim(11));
        m.data_mut()[0] = 9;
        assert_eq!(m.data()[0], 9);
        assert!(m.append(u16::MAX).is_none());
        assert!(m.prepend(200).is_none());
        assert_eq!(m.nb_segs(), 1);
        m.prefetch_data();
        let mut b = MbufBurst::<4>::new();
        b.push(m).unwrap();
        for _ in 0..3 {
            b.push(pool.alloc().unwrap()).unwrap();
        }
        assert!(b.is_full());
        let extra = pool.alloc().unwrap();
        assert!(b.push(extra).is_err()); // gives it back; dropped here
        assert_eq!(pool.in_use_count(), 4);
        b.clear(); // bulk free
        assert_eq!(pool.in_use_count(), 0);
    }

    // Chained mbufs: a 5000-byte packet over three segments.
    {
        let whole: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut head = pool.alloc().unwrap();
        let room = usize::from(head.tailroom());
        head.append(room as u16)
            .unwrap()
            .copy_from_slice(&whole[..room]);
        let mut at = room;
        while at < whole.len() {
            let mut seg = pool.alloc().unwrap();
            let n = (whole.len() - at).min(usize::from(seg.tailroom()));
            seg.append(n as u16)
                .unwrap()
                .copy_from_slice(&whole[at..at + n]);
            at += n;
            head.chain(seg).unwrap();
        }
        assert_eq!(head.nb_segs(), 3);
        assert_eq!(head.pkt_len(), 5000);
        assert_eq!(head.data_len(), room);
        assert_eq!(head.data(), &whole[..room]);
        assert_eq!(pool.in_use_count(), 3);
        let joined: Vec<u8> = head.segments().flatten().copied().collect();
        assert_eq!(joined, whole);
        // Reads across the segment boundaries, and past the end.
        let mut out = [0u8; 2500];
        assert_eq!(head.read(room - 10, &mut out), 2500);
        assert_eq!(&out[..], &whole[room - 10..room + 2490]);
        assert_eq!(head.read(4990, &mut out), 10);
        assert_eq!(&out[..10], &whole[4990..]);
        assert_eq!(head.read(6000, &mut out), 0);
        // The tailroom is the last segment's: the head is full, and
        // appending what it says fits succeeds, and lands at the end.
        let last_room = head.tailroom();
        assert_eq!(usize::from(last_room), room * 3 - 5000);
        head.append(4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(head.tailroom(), last_room - 4);
        assert_eq!(head.pkt_len(), 5004);
        assert_eq!(head.segments().last().unwrap().last(), Some(&4));
        drop(head); // frees every segment
        assert_eq!(pool.in_use_count(), 0);
    }

    // Ports: pcap in/out and a null sink.
    let p0 = eal
        .probe_port(&format!(
            "net_pcap0,rx_pcap={},tx_pcap={}",
            in_pcap.display(),
            out_pcap.display()
        ))
        .expect("probe pcap");
    let p1 = eal.probe_port("net_null0,no-rx=1").expect("probe null");
    // Probes from several threads at once each get their own port.
    let ids: Vec<_> = (0..4)
        .map(|i| {
            let eal = eal.clone();
            std::thread::spawn(move || eal.probe_port(&format!("net_null{}", 10 + i)))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().expect("concurrent probe"))
        .collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(Port::id_by_name(&format!("net_null{}", 10 + i)), Some(*id));
    }
    let info0 = Port::device_info(p0).unwrap();
    assert_eq!(info0.driver, "net_pcap");
    assert_eq!(info0.name, "net_pcap0");
    assert_eq!(Port::id_by_name("net_null0"), Some(p1));
    let setup = PortSetup::default();
    let (mut port0, mut rx0, mut tx0) = Port::configure(&eal, p0, &setup, pool.clone()).unwrap();
    // A second configure would hand out a second set of queue handles.
    let err = Port::configure(&eal, p0, &setup, pool.clone()).unwrap_err();
    assert!(err.to_string().contains("already configured"), "{err}");
    // An MTU the device does not take is refused before DPDK is asked.
    let info1 = Port::device_info(p1).unwrap();
    let tiny = PortSetup {
        mtu: Some(info1.min_mtu - 1),
        ..PortSetup::default()
    };
    let err = Port::configure(&eal, p1, &tiny, pool.clone()).unwrap_err();
    assert!(err.to_string().contains("takes an MTU of"), "{err}");
    let jumbo = PortSetup {
        mtu: Some(9000),
        ..PortSetup::default()
    };
    let (mut port1, rx1, mut tx1) = Port::configure(&eal, p1, &jumbo, pool.clone()).unwrap();
    assert_eq!(port1.mtu(), 9000);
    assert_eq!(pool.segment_room(), 2048);
    port0.start().unwrap();
    port1.start().unwrap();
    assert!(!port0.rss_enabled(), "one queue: no RSS");
    let _ = port0.mac();
    // Virtual devices keep Ethernet's default.
    assert_eq!(port0.mtu(), 1500);
    // net_null reports a fixed 10 Gb/s full-duplex link, up once started.
    assert_eq!(
        port1.link(),
        LinkStatus {
            up: true,
            speed_mbps: 10_000,
            full_duplex: true
        }
    );
    // Virtual devices name no speed capability.
    assert_eq!(Port::device_info(p1).unwrap().max_speed_mbps, 0);
    assert_eq!(rx1.first().map(|q| q.descriptors()), Some(setup.rx_desc));

    // Receive every frame of the capture on a worker lcore, send it back out
    // of the pcap port (written to out.pcap) and count on the null port.
    let mut rxq = rx0.pop().unwrap();
    let mut txq = tx0.pop().unwrap();
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release_w = release.clone();
    // Only enabled worker lcores, and only from the main lcore.
    assert!(lcore::launch(&eal, 0, || 0).is_err(), "the main lcore");
    assert!(
        lcore::launch(&eal, 5000, || 0).is_err(),
        "past RTE_MAX_LCORE"
    );
    let other = eal.clone();
    let from_elsewhere = std::thread::spawn(move || lcore::launch(&other, 1, || 0).is_err());
    assert!(
        from_elsewhere.join().unwrap(),
        "a thread that is not the main lcore"
    );
    let task = lcore::launch(&eal, 1, move || {
        assert_eq!(lcore::current(), 1);
        let mut got = 0;
        let start = std::time::Instant::now();
        let mut burst = MbufBurst::<32>::new();
        while got < 5 && start.elapsed().as_secs() < 10 {
            let n = rxq.rx_burst(&mut burst);
            got += n;
            let r = txq.tx_burst(&mut burst);
            assert_eq!(r.sent + r.dropped, n);
        }
        // Keep the queues until the main lcore has tried to stop the port.
        while !release_w.load(std::sync::atomic::Ordering::Acquire) {
            std::hint::spin_loop();
        }
        drop(rxq);
        drop(txq);
        got as i32
    })
    .unwrap();
    assert!(port0.queues_in_use());
    assert!(
        port0.stop().is_err(),
        "stop must wait for the worker's queues"
    );
    release.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(task.join(), 5);

    // Tx to the null port from the main lcore (a non-worker thread is fine).
    let mut b = MbufBurst::<32>::new();
    for _ in 0..8 {
        let mut m = pool.alloc().unwrap();
        m.append(64).unwrap().fill(0xab);
        b.push(m).unwrap();
    }
    let r = tx1.pop().unwrap().tx_burst(&mut b);
    assert_eq!(r.sent, 8);
    assert!(b.is_empty());

    let s0 = port0.stats();
    // Another thread's view of the same counters.
    let reader0 = port0.reader();
    assert_eq!(reader0.id(), p0);
    let from_reader = std::thread::spawn(move || reader0.stats()).join().unwrap();
    assert_eq!(from_reader, Some(s0));
    let reader0 = port0.reader();
    assert_eq!(s0.ipackets, 5);
    assert_eq!(s0.opackets, 5);
    let total: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(s0.ibytes, total);
    assert_eq!(port1.stats().opackets, 8);

    port0.stop().unwrap();
    assert!(
        port1.stop().is_err(),
        "rx queue handle of port 1 still alive"
    );
    drop(rx1);
    port1.stop().unwrap();
    drop(port0); // closes: net_pcap flushes out.pcap
    drop(port1);
    // A closed port is read no more.
    assert_eq!(reader0.stats(), None);
    assert_eq!(reader0.link(), None);
    assert_eq!(pool.in_use_count(), 0, "every mbuf back in the pool");

    // out.pcap holds the input frames, byte for byte, in order.
    let out = std::fs::read(&out_pcap).unwrap();
    let mut off = 24;
    for f in &frames {
        let caplen = u32::from_le_bytes(out[off + 8..off + 12].try_into().unwrap()) as usize;
        assert_eq!(&out[off + 16..off + 16 + caplen], &f[..]);
        off += 16 + caplen;
    }
    assert_eq!(off, out.len());
    // A driver that refuses packets (a ring port nobody drains fills at
    // 1023): what it refused is freed by the sender, what it took is the
    // driver's until received back.
    {
        let pr = eal.probe_port("net_ring0").expect("probe ring");
        let (mut port, mut rx, mut tx) =
            Port::configure(&eal, pr, &PortSetup::default(), pool.clone()).unwrap();
        port.start().unwrap();
        let (mut rxq, mut txq) = (rx.pop().unwrap(), tx.pop().unwrap());
        let (mut sent, mut dropped) = (0, 0);
        for _ in 0..40 {
            let mut b = MbufBurst::<32>::new();
            for _ in 0..32 {
                assert!(b.push(pool.alloc().unwrap()).is_ok());
            }
            let r = txq.tx_burst(&mut b);
            assert!(b.is_empty());
            sent += r.sent;
            dropped += r.dropped;
        }
        assert_eq!(sent + dropped, 1280);
        assert!(dropped > 0 && sent > 0, "{sent} sent, {dropped} refused");
        assert_eq!(pool.in_use_count(), sent as u32, "refused packets freed");
        assert!(!txq.tx_one(pool.alloc().unwrap()), "the ring is full");
        assert_eq!(pool.in_use_count(), sent as u32);
        let mut got = 0;
        loop {
            let mut b = MbufBurst::<32>::new();
            let n = rxq.rx_burst(&mut b);
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, sent);
        assert_eq!(pool.in_use_count(), 0);
        drop((rxq, txq, rx, tx));
        port.stop().unwrap();
    }
    let runtime_dir = eal.info().runtime_dir;
    assert!(std::path::Path::new(&runtime_dir).is_dir(), "{runtime_dir}");
    drop(pool);
    drop(eal);
    // EAL's runtime files go with it.
    assert!(
        !std::path::Path::new(&runtime_dir).exists(),
        "{runtime_dir} left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
