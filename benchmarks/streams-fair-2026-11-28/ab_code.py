import sys, tempfile, json, os
sys.path.insert(0,'/work/main/tools')
from pathlib import Path
import bench_streams
V='/work/shared/data/video/solidWhiteRight.mp4'
variants=dict(reversed(list({'before':'/tmp/wt-before','after':'/work/main'}.items()))) if os.environ.get('SWAP') else {'before':'/tmp/wt-before','after':'/work/main'}
out={k:[] for k in variants}
n=int(sys.argv[2]) if len(sys.argv)>2 else 4
for rnd in range(int(sys.argv[1])):
    for k,path in variants.items():
        os.chdir(path)
        with tempfile.TemporaryDirectory() as d:
            r=bench_streams.batched(V,n,200,[],Path(d)/'b')
        out[k].append(r)
        print(rnd,k,r['aggregate_fps'],r['per_stream_fps'],max(r['latency_p95_ms']),r['mean_batch'],flush=True)
json.dump(out,open(sys.argv[3] if len(sys.argv)>3 else '/tmp/st/ab_code.json','w'), indent=1)
