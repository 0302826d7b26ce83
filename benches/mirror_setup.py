#!/usr/bin/env python3
"""Configures traffic-mirroring sessions on a running flowgate for the
mirroring benchmark, through its EC2 API with boto3.

  --mode none     remove every session, filter and target
  --mode nothing  one session whose filter accepts nothing it sees
  --mode 10pct    one session mirroring about 10 % of packets (the first
                  tenth of flowgate-pcapgen's source addresses, to a power of two)
  --mode 100pct   one session mirroring every packet
--packet-length N cuts copies to N bytes (0: whole frames).
"""

import argparse
import math

import boto3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--keys", required=True, help="ACCESS:SECRET")
    ap.add_argument("--mode", choices=["none", "nothing", "10pct", "100pct"], required=True)
    ap.add_argument("--packet-length", type=int, default=0)
    ap.add_argument("--flows", type=int, default=65536, help="flows in the capture (for 10pct)")
    ap.add_argument("--source", default="eni-0inside0000000001")
    ap.add_argument("--target", default="eni-0collector00000001")
    a = ap.parse_args()
    key, secret = a.keys.split(":", 1)
    c = boto3.client("ec2", endpoint_url=a.endpoint, region_name="us-east-1",
                     aws_access_key_id=key, aws_secret_access_key=secret)
    for s in c.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]:
        c.delete_traffic_mirror_session(TrafficMirrorSessionId=s["TrafficMirrorSessionId"])
    for f in c.describe_traffic_mirror_filters()["TrafficMirrorFilters"]:
        c.delete_traffic_mirror_filter(TrafficMirrorFilterId=f["TrafficMirrorFilterId"])
    for t in c.describe_traffic_mirror_targets()["TrafficMirrorTargets"]:
        c.delete_traffic_mirror_target(TrafficMirrorTargetId=t["TrafficMirrorTargetId"])
    if a.mode == "none":
        return
    t = c.create_traffic_mirror_target(NetworkInterfaceId=a.target)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    f = c.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    rule = dict(TrafficMirrorFilterId=f, TrafficDirection="ingress", RuleNumber=1, RuleAction="accept",
                DestinationCidrBlock="0.0.0.0/0", SourceCidrBlock="0.0.0.0/0")
    if a.mode == "nothing":
        rule["Protocol"] = 132  # SCTP: the benchmark's captures carry none
    elif a.mode == "10pct":
        # flowgate-pcapgen flows: flow j comes from 10.0.0.1 + j, so the
        # block of the first tenth of them (rounded to a power of two).
        bits = max(0, round(math.log2(max(1, a.flows / 10))))
        rule["SourceCidrBlock"] = f"10.0.0.0/{32 - bits}"
    c.create_traffic_mirror_filter_rule(**rule)
    kw = dict(NetworkInterfaceId=a.source, TrafficMirrorTargetId=t, TrafficMirrorFilterId=f, SessionNumber=1,
              VirtualNetworkId=1)
    if a.packet_length:
        kw["PacketLength"] = a.packet_length
    c.create_traffic_mirror_session(**kw)


if __name__ == "__main__":
    main()
