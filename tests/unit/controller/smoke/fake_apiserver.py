"""Tiny fake API server for a manual controller smoke run (see run.sh).
Serves one PodCheckpoint and one running Pod, the helper Lease when $FP is set,
records PATCH/POST in $OUT/requests.log, pushes MODIFIED on watches,
and marks the CR deleted after $DELETE_AFTER seconds."""
import json, threading, time, sys, copy, queue
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
import os
lock = threading.Lock()
FP=os.environ.get('FP','')
rv = [10]
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
pcp = {"apiVersion":"checkpointing.dev/v1alpha1","kind":"PodCheckpoint",
       "metadata":{"namespace":"default","name":"cp1","uid":"uid-cp1","generation":1,"resourceVersion":"10","creationTimestamp":now},
       "spec":{"podName":"web","timeoutSeconds":30,"leaveRunning":True,"deletionPolicy":"Delete"}}
pod = {"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"default","name":"web","uid":"pod-uid","resourceVersion":"5"},
       "spec":{"nodeName":"node-a","containers":[{"name":"app"}]},"status":{"phase":"Running"}}
watchers = []
log = open(os.environ.get("OUT",".")+"/requests.log","w")
def merge(dst, p):
    for k,v in p.items():
        if v is None: dst.pop(k,None)
        elif isinstance(v,dict) and isinstance(dst.get(k),dict): merge(dst[k],v)
        else: dst[k]=copy.deepcopy(v)
class H(BaseHTTPRequestHandler):
    protocol_version="HTTP/1.1"
    def log_message(self,*a): pass
    def body(self):
        n=int(self.headers.get("Content-Length","0")); return self.rfile.read(n) if n else b""
    def send(self, code, obj):
        b=json.dumps(obj).encode(); self.send_response(code); self.send_header("Content-Type","application/json")
        self.send_header("Content-Length",str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        p=self.path; log.write("GET %s\n"%p); log.flush()
        if "watch=" in p:
            q=queue.Queue(); kind="pcp" if "podcheckpoints" in p else "pod"
            with lock: watchers.append((kind,q))
            self.send_response(200); self.send_header("Content-Type","application/json"); self.send_header("Transfer-Encoding","chunked"); self.end_headers()
            t0=time.time()
            try:
                while time.time()-t0<20:
                    try: ev=q.get(timeout=0.5)
                    except queue.Empty: continue
                    b=(json.dumps(ev)+"\n").encode()
                    self.wfile.write(b"%x\r\n"%len(b)+b+b"\r\n"); self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except Exception: pass
            with lock: watchers.remove((kind,q))
            return
        if p.startswith("/apis/checkpointing.dev/v1alpha1/podcheckpoints"):
            with lock: return self.send(200,{"kind":"PodCheckpointList","apiVersion":"checkpointing.dev/v1alpha1","metadata":{"resourceVersion":str(rv[0])},"items":[pcp] if pcp else []})
        if p.startswith("/api/v1/pods"):
            return self.send(200,{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":str(rv[0])},"items":[pod]})
        if "/leases/pcp-helper-node-a" in p and FP:
            ts=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            return self.send(200,{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"pcp-helper-node-a","namespace":"podcheckpoint-system","resourceVersion":"3",
              "annotations":{"checkpointing.dev/endpoint":"wss://127.0.0.1:"+os.environ.get("HELPER_PORT","28543"),"checkpointing.dev/cert-sha256":FP,"checkpointing.dev/node":"node-a"}},
              "spec":{"holderIdentity":"helper-a","leaseDurationSeconds":15,"renewTime":ts}})
        return self.send(404,{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"})
    def do_PATCH(self):
        b=self.body(); log.write("PATCH %s %s\n"%(self.path,b.decode())); log.flush()
        p=json.loads(b)
        with lock:
            want=p.get("metadata",{}).get("resourceVersion")
            if want and want!=pcp["metadata"]["resourceVersion"]:
                return self.send(409,{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409,"message":"conflict"})
            p.get("metadata",{}).pop("resourceVersion",None)
            if self.path.endswith("/status"): merge(pcp,{"status":p["status"]})
            else: merge(pcp,p)
            if "deletionTimestamp" in pcp["metadata"] and not pcp["metadata"].get("finalizers"):
                log.write("OBJECT DELETED\n"); log.flush()
            rv[0]+=1; pcp["metadata"]["resourceVersion"]=str(rv[0])
            for k,q in watchers:
                if k=="pcp": q.put({"type":"MODIFIED","object":copy.deepcopy(pcp)})
            return self.send(200,pcp)
    def do_POST(self):
        b=self.body(); log.write("POST %s %s\n"%(self.path,b.decode())); log.flush()
        o=json.loads(b); self.send(201,o)
def deleter():
    time.sleep(float(os.environ.get("DELETE_AFTER","0")) or 1e9)
    with lock:
        pcp["metadata"]["deletionTimestamp"]=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pcp.setdefault("status",{})["artifact"]={"path":"/var/lib/pcp/default/cp1-uid-cp1.tar"}
        rv[0]+=1; pcp["metadata"]["resourceVersion"]=str(rv[0])
        for k,q in watchers:
            if k=="pcp": q.put({"type":"MODIFIED","object":copy.deepcopy(pcp)})
threading.Thread(target=deleter,daemon=True).start()
ThreadingHTTPServer(("127.0.0.1",int(sys.argv[1])),H).serve_forever()
