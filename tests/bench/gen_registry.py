#!/usr/bin/env python3
"""gen_registry.py: a generated county registry in the CSV formats of
`yizhan registry import` (README, "The registry"): schools.csv,
people.csv (teachers and volunteers), children.csv (one row per child with
its contact card) and pairings.csv, with realistic Chinese names, mainland
mobile numbers and the mix of guardians county reports describe (paternal
grandparents most often, then maternal grandparents, other relatives, a
parent at home). Deterministic for a given seed.

Usage: gen_registry.py [--children N] [--seed S] [--encoding utf-8|gbk]
                       [--out DIR]
(default 1000 children, seed 1, UTF-8, the current directory). About 330
children per school; siblings share their parents and guardian.
"""
import argparse
import csv
import os
import random

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
# Surnames early in the list are more common: weights fall off gently.
SURNAME_WEIGHTS = [1.0 / (1 + i * 0.08) for i in range(len(SURNAMES))]
BOY = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国文博志轩子豪梓睿宇航晨皓然一铭泽"
GIRL = "芳娜敏静丽艳娟霞秀玲桂英慧巧美琳雪婷颖倩琪欣怡佳梦瑶涵萱诗雨思彤语嘉馨月可心悦妍菲露晓红梅兰"
ELDER_M = "德福贵财生根发富学成荣祥全顺金山"
ELDER_F = "秀兰桂英凤珍花芝翠琴莲玉春梅香"
TOWNS = ("石门 青山 龙泉 白沙 马坪 桃源 柳溪 河口 新华 兴隆 长岭 黄土 双河 枫林 高桥 竹园 清水 花桥 太平 安乐 "
         "金塘 凤凰 云台 杨柳 松岗 平安 大坪 沙湾 永和 东山 西岭 南岸 北坡 梅花 荷塘 三溪 五里 七星 九龙 官庄").split()
VILLAGES = "村 坪 湾 岭 冲 坳 溪 塘 垭 坝".split()
CITIES = ("广东东莞 广东深圳 广东广州 浙江宁波 浙江温州 浙江义乌 福建晋江 福建厦门 江苏苏州 江苏昆山 上海 北京 "
          "湖北武汉 四川成都 重庆 天津 山东青岛 河南郑州").split()
NOTES = ("", "", "", "", "", "", "", "", "身体健康", "性格内向，需要多关心", "爱好画画", "有哮喘，注意天气变化",
         "成绩进步明显", "与祖母同住，祖母腿脚不便")
# guardian relation (canonical form) and its share among children
RELATIONS = (("祖父母", 0.55), ("外祖父母", 0.15), ("父亲", 0.06), ("母亲", 0.09),
             ("其他亲属", 0.10), ("其他", 0.05))
CHILD_HEADER = ["姓名", "性别", "出生日期", "学校", "班级", "村", "外出", "外出时间", "状态", "学习表现",
                "父亲姓名", "父亲电话", "父亲务工地", "母亲姓名", "母亲电话", "母亲务工地",
                "监护人姓名", "监护人关系", "监护人电话", "备注"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.phones = set()

    def surname(self):
        return self.r.choices(SURNAMES, SURNAME_WEIGHTS)[0]

    def given(self, pool):
        n = 1 if self.r.random() < 0.3 else 2
        return "".join(self.r.choice(pool) for _ in range(n))

    def phone(self):
        while True:
            p = "1" + self.r.choice("3456789") + "".join(self.r.choice("0123456789") for _ in range(9))
            if p not in self.phones:
                self.phones.add(p)
                return p


def schools_for(g, n_children):
    n = max(1, n_children // 330)
    names, seen = [], set()
    kinds = ["中心小学", "小学", "完全小学", "中学", "九年一贯制学校"]
    i = 0
    while len(names) < n:
        town = TOWNS[i % len(TOWNS)]
        k = kinds[(i // len(TOWNS)) % len(kinds)]
        tag = "" if i < len(TOWNS) * len(kinds) else str(i // (len(TOWNS) * len(kinds)) + 1) + "校区"
        name = town + "镇" + k + tag
        if name not in seen:
            seen.add(name)
            names.append((name, town + "镇"))
        i += 1
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"])
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    g = Gen(a.seed)
    r = g.r
    enc = a.encoding

    def writer(name):
        f = open(os.path.join(a.out, name), "w", encoding=enc, newline="")
        return f, csv.writer(f, lineterminator="\r\n")

    schools = schools_for(g, a.children)
    classes = ["%d年级%d班" % (y, c) for y in range(1, 7) for c in range(1, 3)]
    per_school = -(-a.children // len(schools))

    f, w = writer("schools.csv")
    w.writerow(["学校", "乡镇", "在校学生数"])
    for name, town in schools:
        w.writerow([name, town, per_school * 3 + r.randrange(0, 200)])
    f.close()

    # teachers: a head teacher per class, a head and a deputy per school;
    # a few volunteers per school
    f, w = writer("people.csv")
    w.writerow(["姓名", "类别", "电话", "学校", "班级", "职务"])
    helpers = {}
    for name, _ in schools:
        hs = []
        for c in classes:
            t = (g.surname() + g.given(BOY + GIRL), g.phone())
            w.writerow([t[0], "教师", t[1], name, c, "班主任"])
            hs.append(t)
        for role in ("校长", "分管副校长"):
            w.writerow([g.surname() + g.given(BOY + GIRL), "教师", g.phone(), name, "", role])
        for _ in range(2):
            v = (g.surname() + g.given(BOY + GIRL), g.phone())
            w.writerow([v[0], "志愿者", v[1], "", "", ""])
            hs.append(v)
        helpers[name] = hs
    f.close()

    fc, wc = writer("children.csv")
    wc.writerow(CHILD_HEADER)
    fp, wp = writer("pairings.csv")
    wp.writerow(["学生姓名", "学校", "出生日期", "结对人", "结对人电话", "开始日期"])
    seen = set()
    family = None
    rel_names = [x[0] for x in RELATIONS]
    rel_weights = [x[1] for x in RELATIONS]
    for i in range(a.children):
        school = schools[i // per_school][0]
        if family is None or family["school"] != school or r.random() > 0.15:
            sn = g.surname()
            away = r.choices(["父母", "父亲", "母亲"], [0.6, 0.3, 0.1])[0]
            rel = r.choices(rel_names, rel_weights)[0]
            if away == "父母" and rel in ("父亲", "母亲"):
                rel = "祖父母"
            if away == "父亲" and rel == "父亲":
                rel = "母亲"
            if away == "母亲" and rel == "母亲":
                rel = "父亲"
            father = (sn + g.given(BOY), g.phone(), r.choice(CITIES))
            mother = (g.surname() + g.given(GIRL), g.phone() if r.random() < 0.9 else "", r.choice(CITIES))
            if away == "父亲":
                mother = (mother[0], mother[1] or g.phone(), "")
            if away == "母亲":
                father = (father[0], father[1], "")
            if rel == "父亲":
                guardian = (father[0], father[1])
            elif rel == "母亲":
                guardian = (mother[0], mother[1] or g.phone())
                mother = (mother[0], guardian[1], mother[2])
            elif rel == "祖父母":
                guardian = (sn + g.given(ELDER_M + ELDER_F), g.phone())
            elif rel == "外祖父母":
                guardian = (mother[0][0] + g.given(ELDER_M + ELDER_F), g.phone())
            else:
                guardian = (g.surname() + g.given(BOY + GIRL), g.phone())
            family = dict(school=school, sn=sn, away=away, rel=rel, father=father, mother=mother,
                          guardian=guardian, village=r.choice(TOWNS) + r.choice(VILLAGES),
                          since="%d-%02d" % (r.randrange(2016, 2026), r.randrange(1, 13)))
        while True:
            boy = r.random() < 0.52
            name = family["sn"] + g.given(BOY if boy else GIRL)
            year = r.randrange(2012, 2021)
            birth = "%d-%02d-%02d" % (year, r.randrange(1, 13), r.randrange(1, 29))
            if (school, name, birth) not in seen:
                seen.add((school, name, birth))
                break
        cls = classes[min(11, max(0, (2020 - year) * 2 + r.randrange(0, 2)))]
        status = r.choices(["留守", "返乡", "毕业", "转学"], [0.94, 0.03, 0.02, 0.01])[0]
        perf = r.choices(["好", "中", "差", ""], [0.3, 0.45, 0.2, 0.05])[0]
        fa, mo, gu = family["father"], family["mother"], family["guardian"]
        wc.writerow([name, "男" if boy else "女", birth, school, cls, family["village"], family["away"],
                     family["since"] + "-01", status, perf, fa[0], fa[1], fa[2], mo[0], mo[1], mo[2],
                     gu[0], family["rel"], gu[1], r.choice(NOTES)])
        if status == "留守" and r.random() < 0.3:
            h = r.choice(helpers[school])
            wp.writerow([name, school, birth, h[0], h[1], "2026-09-01"])
    fc.close()
    fp.close()


if __name__ == "__main__":
    main()
